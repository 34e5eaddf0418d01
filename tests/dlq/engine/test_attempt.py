"""The engine's strategy tables (SPEC §4), driven without Celery."""

import pytest
from django.contrib.auth.models import Group

from dlq import history
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQAttempt, DLQEntry, JobCounters
from errors.models import ErrorGroup, ErrorOccurrence, ErrorTotal
from tests.conftest import BAD, GOOD, occurrences

pytestmark = pytest.mark.django_db


def counters(job):
    return JobCounters.objects.get(job=job)


def records(n_good, n_bad):
    return [GOOD] * n_good + [BAD] * n_bad


# (strategy, good, bad) -> (status, processed, failed, dlq_added, attempts)
# demo.trades fails BAD every time, so retries never recover it.
OUTCOMES = [
    ("log_and_continue", 10, 0, ("succeeded", 10, 0, 0, 1)),
    ("log_and_continue", 9, 1, ("partial", 10, 1, 1, 1)),
    ("log_and_continue", 0, 10, ("partial", 10, 10, 10, 1)),
    ("send_to_dlq", 10, 0, ("succeeded", 10, 0, 0, 1)),
    ("send_to_dlq", 9, 1, ("partial", 10, 1, 1, 1)),
    ("send_to_dlq", 0, 10, ("partial", 10, 10, 10, 1)),
    ("fail_batch", 10, 0, ("succeeded", 10, 0, 0, 1)),
    ("fail_batch", 9, 1, ("failed", 30, 30, 10, 3)),
    ("fail_batch", 0, 10, ("failed", 30, 30, 10, 3)),
    ("retry_with_backoff", 10, 0, ("succeeded", 10, 0, 0, 1)),
    ("retry_with_backoff", 9, 1, ("partial", 12, 3, 1, 3)),
    ("retry_with_backoff", 0, 10, ("partial", 30, 30, 10, 3)),
]


@pytest.mark.parametrize(("strategy", "good", "bad", "expected"), OUTCOMES)
def test_strategy_outcome_table(make_job, run_batch, strategy, good, bad, expected):
    job = make_job(failure_strategy=strategy, max_retries=2)
    batch = run_batch(job, records(good, bad))
    status, processed, failed, dlq_added, attempts = expected
    assert (batch.status, batch.processed, batch.failed, batch.dlq_added, batch.attempts) == (
        status,
        processed,
        failed,
        dlq_added,
        attempts,
    )
    c = counters(job)
    assert (c.records_processed, c.records_failed, c.dlq_added, c.dlq_pending) == (
        processed,
        failed,
        dlq_added,
        dlq_added,
    )
    assert DLQEntry.objects.filter(job=job).count() == dlq_added
    assert getattr(c, f"batches_{status}") == 1
    assert c.batch_retries == attempts - 1


def test_log_and_continue_counts_like_velostream(make_job, run_batch):
    job = make_job(failure_strategy="log_and_continue")
    batch = run_batch(job, records(98, 2))
    c = counters(job)
    assert (c.records_processed, c.records_failed, c.dlq_added) == (100, 2, 2)
    assert batch.status == "partial"


def test_log_and_continue_without_dlq_keeps_only_the_error(make_job, run_batch):
    job = make_job(failure_strategy="log_and_continue", dlq_enabled=False)
    batch = run_batch(job, records(5, 2))
    assert batch.status == "partial"
    assert DLQEntry.objects.count() == 0
    assert occurrences() == 2
    assert counters(job).records_failed == 2


def test_send_to_dlq_ignores_dlq_enabled(make_job, run_batch):
    job = make_job(failure_strategy="send_to_dlq", dlq_enabled=False)
    run_batch(job, records(1, 1))
    assert DLQEntry.objects.count() == 1


def test_failed_records_are_logged_at_warning_with_the_job_name(make_job, run_batch, caplog):
    job = make_job(failure_strategy="send_to_dlq")
    run_batch(job, records(1, 1))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("orders" in r.getMessage() and "symbol" in r.getMessage() for r in warnings)


def test_dlq_entry_keeps_record_error_context_and_history(make_job, run_batch, settings):
    from errors.context import DeploymentContext

    settings.VELO_DEPLOYMENT = DeploymentContext("node-7", "ingest", "eu-west-1", "2.3.4")
    job = make_job(failure_strategy="send_to_dlq")
    batch = run_batch(job, [GOOD, BAD])
    entry = DLQEntry.objects.get()
    assert (entry.batch_id, entry.index, entry.payload) == (batch.pk, 1, BAD)
    assert entry.error_type == "RecordInvalid"
    assert entry.error_message == "Missing required column 'symbol'"
    assert "Traceback" in entry.full_traceback
    assert (entry.node_id, entry.node_name, entry.region, entry.version) == (
        "node-7",
        "ingest",
        "eu-west-1",
        "2.3.4",
    )
    # Its original attempt is the entry's own row: no attempt row is written for it.
    assert not DLQAttempt.objects.filter(entry=entry).exists()
    [attempt] = history.of_entry(entry)
    assert (attempt.kind, attempt.outcome, attempt.started_by) == ("original", "failed", "worker")
    assert (attempt.error_message, attempt.node_id, attempt.at) == (
        "Missing required column 'symbol'",
        "node-7",
        entry.created_at,
    )
    occurrence = ErrorOccurrence.objects.get()
    assert (occurrence.count, occurrence.batch_id, occurrence.group_id, occurrence.node_id) == (
        1,
        batch.pk,
        entry.error_group_id,
        "node-7",
    )


def test_errors_are_grouped_by_fingerprint_and_totals_stored(make_job, run_batch):
    job = make_job(processor="test.fails_on", failure_strategy="send_to_dlq")
    run_batch(job, [{"fail": True, "ms": 3001}, {"fail": True, "ms": 2950}, {"ok": 1}])
    group = ErrorGroup.objects.get()
    assert (group.template, group.count, group.job_name) == ("Timeout after <*>", 2, "orders")
    assert group.last_message == "Timeout after 2950 ms"
    assert set(DLQEntry.objects.values_list("error_group", flat=True)) == {group.pk}
    assert ErrorTotal.objects.get(job_name="orders").occurrences == 2


def test_a_resolved_group_reopens_on_a_new_occurrence(make_job, run_batch):
    job = make_job(failure_strategy="send_to_dlq")
    run_batch(job, [BAD])
    ErrorGroup.objects.update(status="resolved")
    run_batch(job, [BAD])
    group = ErrorGroup.objects.get()
    assert (group.status, group.count) == ("unresolved", 2)
    assert group.regressed_at is not None


def test_fail_batch_exhausted_dead_letters_every_record_in_the_cause_group(make_job, run_batch):
    job = make_job(failure_strategy="fail_batch", max_retries=1)
    batch = run_batch(job, [GOOD, BAD, GOOD])
    entries = {e.index: e for e in DLQEntry.objects.all()}
    assert entries[1].error_message == "Missing required column 'symbol'"
    assert entries[0].error_message == "Batch failed: Missing required column 'symbol'"
    assert entries[2].error_message == entries[0].error_message
    assert len({e.error_group_id for e in entries.values()}) == 1
    # One occurrence per real failure (one per attempt), none for the bystanders.
    assert occurrences() == batch.attempts == 2
    assert ErrorGroup.objects.get().count == 2


def test_fail_batch_rolls_back_the_processors_writes_and_retries_with_backoff(make_job):
    job = make_job(
        processor="test.writes",
        failure_strategy="fail_batch",
        max_retries=3,
        retry_initial_delay=5,
        retry_multiplier=3,
    )
    batch, _ = submit_batch(job, [{"name": "a"}, {"name": "b", "fail": True}])
    assert process_batch(batch.pk) == "retrying"
    batch.refresh_from_db()
    assert not Group.objects.exists()  # "a" was written, then rolled back
    assert batch.finished_at is None and batch.next_attempt_at is not None
    c = counters(job)
    assert (c.records_processed, c.records_failed, c.batch_retries) == (2, 2, 1)
    assert occurrences() == 1  # bookkeeping of the failed attempt kept


def test_a_retry_waits_for_its_due_time_and_the_delay_grows(make_job):
    from django.utils import timezone

    job = make_job(
        failure_strategy="retry_with_backoff",
        max_retries=5,
        retry_initial_delay=10,
        retry_multiplier=3,
        retry_max_delay=60,
    )
    batch, _ = submit_batch(job, [BAD])
    delays = []
    for _ in range(4):
        before = timezone.now()
        process_batch(batch.pk)
        batch.refresh_from_db()
        delays.append(round((batch.next_attempt_at - before).total_seconds()))
        assert process_batch(batch.pk) is None  # not due yet: nothing happens
        Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    assert delays == [10, 30, 60, 60]


def test_savepoints_keep_the_writes_of_records_that_succeeded(make_job, run_batch):
    job = make_job(processor="test.writes", failure_strategy="log_and_continue")
    run_batch(job, [{"name": "a"}, {"name": "b", "fail": True}, {"name": "c"}])
    assert sorted(Group.objects.values_list("name", flat=True)) == ["a", "c"]


def test_retry_with_backoff_recovers_transient_failures(make_job, run_batch):
    job = make_job(
        processor="demo.flaky",
        config={"fail_attempts": 2},
        failure_strategy="retry_with_backoff",
        max_retries=3,
    )
    batch = run_batch(job, [{"n": i} for i in range(5)])
    assert (batch.status, batch.attempts, batch.processed, batch.failed) == ("succeeded", 3, 15, 10)
    assert not DLQEntry.objects.exists()
    assert ErrorGroup.objects.get().template == "Transient failure (attempt <*>)"


def test_retry_with_backoff_dead_letters_what_outlasts_max_retries(make_job, run_batch):
    job = make_job(
        processor="demo.flaky",
        config={"fail_attempts": 5},
        failure_strategy="retry_with_backoff",
        max_retries=2,
    )
    batch = run_batch(job, [{"n": 1}, {"n": 2}])
    assert (batch.status, batch.attempts, batch.dlq_added) == ("partial", 3, 2)
    entry = DLQEntry.objects.first()
    assert (entry.attempts, entry.error_message) == (3, "Transient failure (attempt 3)")


def test_an_unknown_processor_fails_every_record_clearly(make_job, run_batch):
    job = make_job(processor="no.such", failure_strategy="send_to_dlq")
    batch = run_batch(job, [GOOD, GOOD])
    assert batch.dlq_added == 2
    assert "unknown processor 'no.such'" in DLQEntry.objects.first().error_message


def test_a_second_delivery_of_a_finished_batch_changes_nothing(make_job, run_batch):
    job = make_job(failure_strategy="send_to_dlq")
    batch = run_batch(job, records(3, 2))
    assert process_batch(batch.pk) is None
    c = counters(job)
    assert (c.records_processed, c.records_failed, c.dlq_added) == (5, 2, 2)
    assert DLQEntry.objects.count() == 2


# --- capacity ---------------------------------------------------------------


def fill_dlq(job, n):
    JobCounters.objects.filter(job=job).update(dlq_pending=n)


@pytest.mark.parametrize(
    ("already", "stored", "rejected"), [(7, 2, 0), (8, 2, 0), (9, 1, 1), (10, 0, 2), (11, 0, 2)]
)
def test_reject_at_capacity(make_job, run_batch, already, stored, rejected, caplog):
    job = make_job(failure_strategy="send_to_dlq", dlq_max_size=10, dlq_full_policy="reject")
    fill_dlq(job, already)
    batch = run_batch(job, records(1, 2))
    c = counters(job)
    assert (batch.dlq_added, batch.dlq_rejected, c.dlq_rejected) == (stored, rejected, rejected)
    assert c.dlq_pending == already + stored
    assert batch.status == "partial"
    assert occurrences() == 2  # a rejected failure is still an error
    if rejected:
        assert c.last_capacity_exceeded_at is not None
        assert any(r.levelname == "ERROR" and "capacity" in r.getMessage() for r in caplog.records)
    else:
        assert c.last_capacity_exceeded_at is None


@pytest.mark.parametrize(
    ("already", "stored_now", "held"), [(8, 2, 0), (9, 1, 1), (10, 0, 2), (11, 0, 2)]
)
def test_backpressure_holds_what_finds_no_room_and_stores_it_later(
    make_job, already, stored_now, held
):
    from django.utils import timezone

    job = make_job(failure_strategy="send_to_dlq", dlq_max_size=10, dlq_full_policy="backpressure")
    fill_dlq(job, already)
    batch, _ = submit_batch(job, records(1, 2))
    process_batch(batch.pk)
    batch.refresh_from_db()
    assert batch.dlq_added == stored_now
    assert batch.dlq_rejected == 0
    if not held:
        assert batch.status == "partial"
        return
    assert batch.status == "retrying"
    assert len(batch.held_failures["letters"]) == held
    # Still full: trying again stores nothing, counts nothing twice.
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    process_batch(batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.dlq_added, batch.processed) == ("retrying", stored_now, 3)
    # An operator makes room: the held failures go in and the batch finishes.
    JobCounters.objects.filter(job=job).update(dlq_pending=0)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    process_batch(batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.dlq_added, batch.dlq_rejected) == ("partial", 2, 0)
    assert counters(job).records_failed == 2
    assert counters(job).batch_retries == 0  # held tries do not count as retries
    # One row for both failures; the entries stored later are its batch's in its group.
    [(group_id, count)] = ErrorOccurrence.objects.filter(batch_id=batch.pk).values_list(
        "group_id", "count"
    )
    assert count == 2
    assert set(DLQEntry.objects.values_list("batch_id", "error_group_id")) == {(batch.pk, group_id)}


def test_failures_held_before_occurrences_were_counted_are_still_stored(make_job):
    """Letters held by a version that linked each occurrence to its entry name the occurrence."""
    from django.utils import timezone

    job = make_job(failure_strategy="send_to_dlq", dlq_max_size=10, dlq_full_policy="backpressure")
    fill_dlq(job, 10)
    batch, _ = submit_batch(job, records(1, 2))
    process_batch(batch.pk)
    batch.refresh_from_db()
    held = batch.held_failures
    for n, letter in enumerate(held["letters"]):
        letter["occurrence_id"] = 1000 + n
    JobCounters.objects.filter(job=job).update(dlq_pending=0)
    Batch.objects.filter(pk=batch.pk).update(held_failures=held, next_attempt_at=timezone.now())

    assert process_batch(batch.pk) == "partial"
    assert DLQEntry.objects.filter(batch=batch).count() == 2


def test_unbounded_dlq_never_rejects(make_job, run_batch):
    job = make_job(failure_strategy="send_to_dlq", dlq_max_size=None)
    fill_dlq(job, 10**9)
    assert run_batch(job, records(0, 3)).dlq_added == 3
