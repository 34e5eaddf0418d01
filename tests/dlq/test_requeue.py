"""Requeue (SPEC §7): pending → requeued → resolved or back to pending, once, with history."""

import threading
import time
from itertools import pairwise

import pytest
from django.db import connection
from django.db.models import Count

from dlq import reprocess, requeue, triage
from dlq.engine import process_batch
from dlq.models import DLQAttempt, DLQEntry, JobCounters, OperatorAction, RequeueRun
from dlq.submit import submit_batch
from errors.models import ErrorGroup, ErrorOccurrence
from tests.dlq.schema_jobs import fail, relax, schema_job


def failing_entries(n, name="orders"):
    """n DLQ entries of a json_schema job, stored by the real engine."""
    job = schema_job(name)
    fail(job, n)
    return job


def counters(job):
    return JobCounters.objects.get(job=job)


@pytest.mark.django_db
def test_a_fixed_cause_resolves_entries_and_their_group():
    job = failing_entries(3)
    relax(job)
    run = requeue.start_run(created_by="ops", filters={"job": "orders"}, background=False)
    assert (run.status, run.total, run.done, run.succeeded, run.failed) == ("finished", 3, 3, 3, 0)
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("resolved", 2)}
    assert all(e.resolved_at for e in DLQEntry.objects.all())
    c = counters(job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (0, 3, 3)
    assert ErrorGroup.objects.get().status == "resolved"
    history = DLQAttempt.objects.filter(kind="requeue")
    assert {(a.outcome, a.started_by, a.requeue_run_id) for a in history} == {
        ("succeeded", "ops", run.pk)
    }


@pytest.mark.django_db
def test_a_cause_that_is_not_fixed_sends_entries_back_to_pending_with_a_new_occurrence():
    job = failing_entries(2)
    run = requeue.start_run(created_by="ops", filters={"job": "orders"}, background=False)
    assert (run.succeeded, run.failed) == (0, 2)
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("pending", 2)}
    assert ErrorOccurrence.objects.count() == 4  # 2 original + 2 requeue failures
    assert ErrorGroup.objects.get().count == 4
    c = counters(job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (2, 2, 0)
    assert ErrorOccurrence.objects.filter(dlq_entry_id__isnull=False).count() == 4


@pytest.mark.django_db
def test_requeue_all_matching_leaves_out_entries_newer_than_what_the_operator_saw():
    job = failing_entries(3)
    seen = DLQEntry.objects.order_by("-pk").first().pk
    batch, _ = submit_batch(job, [{"late": True}])
    process_batch(batch.pk)
    relax(job)
    run = requeue.start_run(
        created_by="ops", filters={"job": "orders"}, max_id=seen, background=False
    )
    assert run.total == 3
    assert DLQEntry.objects.get(pk__gt=seen).status == "pending"
    assert DLQEntry.objects.filter(status="resolved").count() == 3


@pytest.mark.django_db
def test_an_entry_resolved_in_between_is_not_requeued():
    failing_entries(2)
    first = DLQEntry.objects.order_by("pk").first()
    DLQEntry.objects.filter(pk=first.pk).update(status="resolved")
    run = requeue.start_run(created_by="ops", entry_ids=[first.pk], background=False)
    assert (run.total, run.done) == (0, 0)
    assert not DLQAttempt.objects.filter(entry=first, kind="requeue").exists()


@pytest.mark.django_db
def test_a_dry_run_only_counts():
    job = failing_entries(4)
    run = requeue.start_run(created_by="ops", filters={"job": "orders"}, dry_run=True)
    assert (run.status, run.total, run.done, run.dry_run) == ("finished", 4, 0, True)
    assert set(DLQEntry.objects.values_list("status", flat=True)) == {"pending"}
    assert counters(job).dlq_requeued == 0
    action = OperatorAction.objects.get()
    assert (action.action, action.dry_run, action.count) == ("requeue", True, 4)


@pytest.mark.django_db
def test_cancel_stops_a_run_and_leaves_the_rest_pending(settings):
    settings.VELO_REQUEUE_CHUNK = 2
    job = failing_entries(6)
    relax(job)
    run = requeue.start_run(created_by="ops", filters={"job": "orders"})
    # Cancel as soon as the first chunk is done, from inside the run's own loop.
    original = reprocess.reprocess

    def reprocess_then_cancel(entries, run, **kwargs):
        result = original(entries, run, **kwargs)
        requeue.cancel(run.pk, username="ops")
        return result

    reprocess.reprocess = reprocess_then_cancel
    try:
        requeue.execute_run(run.pk)
    finally:
        reprocess.reprocess = original
    run.refresh_from_db()
    assert (run.status, run.done) == ("cancelled", 2)
    assert DLQEntry.objects.filter(status="pending").count() == 4
    assert OperatorAction.objects.filter(action="cancel").count() == 1


@pytest.mark.django_db
def test_a_queued_run_cancelled_never_starts():
    failing_entries(2)
    run = requeue.start_run(created_by="ops", filters={"job": "orders"})
    assert requeue.cancel(run.pk, username="ops")
    assert requeue.execute_run(run.pk) is None
    run.refresh_from_db()
    assert (run.status, run.done) == ("cancelled", 0)


@pytest.mark.django_db
def test_the_canary_stops_the_run_when_the_processor_still_fails(settings):
    settings.VELO_REQUEUE_CHUNK = 50
    failing_entries(20)
    run = requeue.start_run(
        created_by="ops", filters={"job": "orders"}, canary_size=5, background=False
    )
    assert (run.status, run.done, run.failed) == ("cancelled", 5, 5)
    assert "canary" in run.stop_reason
    # Only the sample was tried; the rest wait untouched.
    assert DLQEntry.objects.filter(attempts=1).count() == 15


@pytest.mark.django_db
def test_a_canary_that_passes_lets_the_run_finish():
    job = failing_entries(12)
    relax(job)
    run = requeue.start_run(
        created_by="ops", filters={"job": "orders"}, canary_size=4, background=False
    )
    assert (run.status, run.done, run.succeeded) == ("finished", 12, 12)


@pytest.mark.django_db
def test_a_run_keeps_to_its_rate_limit_within_ten_percent():
    job = failing_entries(60)
    relax(job)
    began = time.monotonic()
    run = requeue.start_run(
        created_by="ops", filters={"job": "orders"}, rate_limit=40, background=False
    )
    elapsed = time.monotonic() - began
    assert run.done == 60
    assert 60 / 40 * 0.9 <= elapsed <= 60 / 40 * 1.1 + 0.5  # 1.5 s expected


@pytest.mark.django_db
def test_edit_and_requeue_keeps_the_original_and_records_the_change():
    failing_entries(1)
    entry = DLQEntry.objects.get()
    run = triage.edit_and_requeue(entry.pk, {"symbol": "ACME"}, username="ops")
    entry.refresh_from_db()
    assert (run.succeeded, entry.status) == (1, "resolved")
    assert (entry.original_payload, entry.payload) == ({"n": 0}, {"symbol": "ACME"})
    edit = OperatorAction.objects.get(action="edit")
    assert edit.details == {"before": {"n": 0}, "after": {"symbol": "ACME"}}
    assert DLQAttempt.objects.get(kind="requeue").payload_edited


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [[1, 2], "text", {"bad": "nul\x00"}])
def test_an_edit_that_cannot_be_stored_is_refused_and_changes_nothing(payload):
    failing_entries(1)
    entry = DLQEntry.objects.get()
    with pytest.raises(triage.EditRefused):
        triage.edit_and_requeue(entry.pk, payload, username="ops")
    entry.refresh_from_db()
    assert (entry.payload, entry.original_payload, entry.status) == ({"n": 0}, None, "pending")
    assert not OperatorAction.objects.exists()


@pytest.mark.django_db
def test_discard_moves_pending_entries_out_of_the_dlq_size():
    job = failing_entries(3)
    assert triage.discard(DLQEntry.objects.all(), username="ops") == 3
    assert triage.discard(DLQEntry.objects.all(), username="ops") == 0
    c = counters(job)
    assert (c.dlq_pending, c.dlq_discarded) == (0, 3)
    first, second = OperatorAction.objects.filter(action="discard").order_by("pk")
    assert (first.count, sorted(first.entry_ids)) == (
        3,
        sorted(DLQEntry.objects.values_list("pk", flat=True)),
    )
    assert (second.count, second.entry_ids) == (0, [])


@pytest.mark.django_db
def test_resolving_and_ignoring_groups_is_audited():
    failing_entries(1)
    assert triage.set_group_status(ErrorGroup.objects.all(), "resolved", username="ops") == 1
    assert ErrorGroup.objects.get().status == "resolved"
    assert triage.set_group_status(ErrorGroup.objects.all(), "ignored", username="ops") == 1
    assert list(OperatorAction.objects.order_by("pk").values_list("action", flat=True)) == [
        "resolve",
        "ignore",
    ]


@pytest.mark.django_db
def test_an_expired_requeue_claim_goes_back_to_pending():
    from datetime import timedelta

    from django.utils import timezone

    job = failing_entries(2)
    run = RequeueRun.objects.create(created_by="ops", filters={"job": "orders"})
    claimed = reprocess.claim(list(DLQEntry.objects.values_list("pk", flat=True)), run)
    assert len(claimed) == 2 and counters(job).dlq_pending == 2  # still taking their place
    DLQEntry.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert reprocess.recover_expired_claims() == 2
    assert counters(job).dlq_pending == 2
    # The worker that lost its claim comes back: it must not resolve anything.
    result = reprocess.reprocess(claimed, run, started_by="ops")
    assert (result.succeeded, result.failed, result.skipped) == (0, 0, 2)
    assert set(DLQEntry.objects.values_list("status", flat=True)) == {"pending"}


@pytest.mark.django_db(transaction=True)
def test_two_requeues_started_at_the_same_moment_process_each_entry_once(settings):
    settings.VELO_REQUEUE_CHUNK = 7
    job = failing_entries(60)
    relax(job)
    runs = [requeue.start_run(created_by=f"ops{i}", filters={"job": "orders"}) for i in (1, 2)]
    barrier = threading.Barrier(2)
    errors = []

    def execute(run_id):
        try:
            barrier.wait()
            requeue.execute_run(run_id)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=execute, args=(run.pk,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for run in runs:
        run.refresh_from_db()
    assert sum(run.succeeded for run in runs) == 60
    assert DLQAttempt.objects.filter(kind="requeue").count() == 60
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("resolved", 2)}
    c = counters(job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (0, 60, 60)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs",
    [
        {"entry_ids": ["x"]},
        {"entry_ids": [True]},
        {"entry_ids": [1.5]},
        {"entry_ids": [-3]},
        {"filters": {"error_group": "abc"}},
        {"filters": {"job": 7}},
        {"filters": {"queue": "x"}},
        {"filters": {}},
        {"filters": {"job": "orders"}, "rate_limit": float("nan")},
        {"filters": {"job": "orders"}, "rate_limit": float("inf")},
        {"filters": {"job": "orders"}, "rate_limit": 0},
        {"filters": {"job": "orders"}, "canary_size": 0},
        {"filters": {"job": "orders"}, "canary_size": 5, "canary_max_failure_ratio": 1.5},
    ],
)
def test_a_requeue_that_cannot_start_is_refused_clearly_and_starts_nothing(kwargs):
    with pytest.raises(requeue.InvalidRequeue):
        requeue.start_run(created_by="ops", **kwargs)
    assert not RequeueRun.objects.exists()
    assert not OperatorAction.objects.exists()


@pytest.mark.django_db
def test_a_filter_run_is_cut_at_the_newest_entry_when_it_starts():
    job = failing_entries(2)
    run = requeue.start_run(created_by="ops", filters={"job": "orders"})
    batch, _ = submit_batch(job, [{"late": True}])
    process_batch(batch.pk)
    relax(job)
    requeue.execute_run(run.pk)
    run.refresh_from_db()
    assert (run.total, run.done) == (2, 2)
    assert DLQEntry.objects.filter(status="pending").count() == 1


@pytest.mark.django_db
def test_a_run_over_thousands_of_ids_walks_them_in_slices(settings):
    settings.VELO_REQUEUE_CHUNK = 500
    job = failing_entries(5)
    relax(job)
    real = list(DLQEntry.objects.values_list("pk", flat=True))
    ids = real + list(range(10_000, 10_000 + 2 * requeue.ID_SLICE + 7))  # most no longer exist
    run = requeue.start_run(created_by="ops", entry_ids=ids, background=False)
    assert (run.total, run.done, run.succeeded) == (5, 5, 5)


@pytest.mark.django_db(transaction=True)  # outside a transaction, as a worker runs it
def test_a_run_starts_with_a_small_chunk_and_grows(settings, monkeypatch):
    settings.VELO_REQUEUE_CHUNK = 2000
    job = failing_entries(1300)
    relax(job)
    sizes, claim = [], reprocess.claim

    def counting_claim(ids, run):
        sizes.append(len(ids))
        return claim(ids, run)

    monkeypatch.setattr(reprocess, "claim", counting_claim)
    run = requeue.start_run(created_by="ops", filters={"job": job.name}, background=False)
    assert (run.done, run.succeeded, sum(sizes)) == (1300, 1300, 1300)
    assert sizes[0] == requeue.FIRST_CHUNK
    assert all(later <= 4 * earlier for earlier, later in pairwise(sizes))
    assert max(sizes) > 200  # grown past the first chunks (each takes well under a second)


def test_chunks_shrink_for_slow_processors_and_grow_back(settings):
    settings.VELO_REQUEUE_CHUNK = 200
    assert requeue._next_size(200, 200, 200, 20.0) == 10  # 0.1 s an entry: ten a second
    assert requeue._next_size(10, 10, 10, 0.01) == 40  # fast again: growing back ...
    assert requeue._next_size(50, 50, 50, 0.01) == 200  # ... to the full chunk
    assert requeue._next_size(200, 200, 37, 9.0) == 200  # a short last chunk says nothing
    assert requeue._next_size(200, 200, 200, 1000.0) == 1
    # A chunk claimed ahead was asked for at the size before: growth goes on from the larger.
    assert requeue._next_size(40, 10, 10, 0.01) == 160


@pytest.mark.django_db
def test_a_working_run_keeps_its_entries_and_itself_claimed():
    from datetime import timedelta

    from django.utils import timezone

    failing_entries(2)
    run = RequeueRun.objects.create(
        created_by="ops",
        filters={"job": "orders"},
        status="running",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    reprocess.claim(list(DLQEntry.objects.values_list("pk", flat=True)), run)
    DLQEntry.objects.update(claimed_until=timezone.now() + timedelta(seconds=1))
    assert requeue._renew(run)
    run.refresh_from_db()
    assert run.heartbeat_at > timezone.now() - timedelta(seconds=5)
    assert all(
        until > timezone.now() + timedelta(seconds=60)
        for until in DLQEntry.objects.values_list("claimed_until", flat=True)
    )
    assert reprocess.recover_expired_claims() == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_cancelled_mid_way_leaves_no_entry_claimed(settings):
    # On PostgreSQL the next chunk is claimed while the current one is worked
    # on: the chunk claimed ahead of a cancel must go back to pending.
    settings.VELO_REQUEUE_CHUNK = 10
    job = schema_job()
    batch, _ = submit_batch(job, [{"n": i, "cancel": i == 15} for i in range(100)])
    process_batch(batch.pk)
    job.processor, job.config = "test.cancels_run", {}
    job.save()

    run = requeue.start_run(created_by="ops", filters={"job": "orders"}, background=False)

    assert (run.status, run.done, run.succeeded) == ("cancelled", 20, 20)
    statuses = dict(DLQEntry.objects.values_list("status").annotate(n=Count("pk")))
    assert statuses == {"resolved": 20, "pending": 80}
    assert counters(job).dlq_pending == 80


def test_a_claimed_entry_is_read_in_the_order_of_its_fields():
    from dataclasses import fields

    names = [name for name, _ in reprocess.CLAIMED]
    assert names == [f.name for f in fields(reprocess.ClaimedEntry)][: len(names)]
