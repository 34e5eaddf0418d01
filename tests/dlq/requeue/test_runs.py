"""Requeue runs: pending → requeued → resolved or back to pending, once, in chunks, with history."""

import threading
import time
from collections import Counter
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from dlq import requeue, sweep
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQAttempt, DLQEntry, OperatorAction, RequeueRun, TracebackHead
from dlq.requeue import RequeueOptions, RequeueScope, entries, scope
from dlq.requeue import runs as lifecycle
from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup
from tests.dlq.factories import (
    assert_backlogs_exact,
    captured_tracebacks,
    counters,
    failing_entries,
    relax,
    schema_job,
)

OPS = Actor("ops", "admin")


@pytest.mark.django_db
def test_a_fixed_cause_resolves_entries_and_their_group():
    job = failing_entries(3)
    relax(job)
    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    assert (run.status, run.total, run.done, run.succeeded, run.failed) == ("finished", 3, 3, 3, 0)
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("resolved", 2)}
    assert all(e.resolved_at for e in DLQEntry.objects.all())
    c = counters(job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (0, 3, 3)
    assert ErrorGroup.objects.get().status == "resolved"
    assert ErrorGroup.objects.get().dlq_pending == 0
    history = DLQAttempt.objects.filter(kind="requeue")
    assert {(a.outcome, a.started_by, a.requeue_run_id) for a in history} == {
        ("succeeded", "ops", run.pk)
    }


@pytest.mark.django_db
def test_a_cause_that_is_not_fixed_sends_entries_back_to_pending_with_a_new_occurrence():
    job = failing_entries(2)
    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    assert (run.succeeded, run.failed) == (0, 2)
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("pending", 2)}
    # 2 original + 2 requeue failures, each pair one row (one batch, one message).
    counted = ErrorOccurrence.objects.order_by("pk").values_list("count", "batch_id")
    batch_id = DLQEntry.objects.values_list("batch_id", flat=True).first()
    assert list(counted) == [(2, batch_id), (2, batch_id)]
    assert ErrorGroup.objects.get().count == 4
    c = counters(job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (2, 2, 0)
    assert_backlogs_exact()


@pytest.mark.django_db
def test_the_failures_of_a_requeue_are_counted_per_batch_and_message():
    job = schema_job("orders")
    for count in (700, 300):
        submit_batch(job, [{"n": i} for i in range(count)])
    for batch in Batch.objects.order_by("pk"):
        process_batch(batch.pk)
    first, second = Batch.objects.order_by("pk").values_list("pk", flat=True)
    originals = set(ErrorOccurrence.objects.values_list("pk", flat=True))

    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)

    assert (run.succeeded, run.failed) == (0, 1000)
    requeued = list(
        ErrorOccurrence.objects.exclude(pk__in=originals).values_list(
            "occurred_at", "batch_id", "count"
        )
    )
    # Each chunk of the run writes one row per batch its failures came from.
    chunks = set(DLQAttempt.objects.filter(kind="requeue").values_list("at", flat=True))
    assert len({(at, batch) for at, batch, _ in requeued}) == len(requeued)
    assert {at for at, _, _ in requeued} == chunks
    per_batch = Counter()
    for _, batch, n in requeued:
        per_batch[batch] += n
    assert per_batch == {first: 700, second: 300}
    group = ErrorGroup.objects.get()
    assert group.count == 2000
    assert ErrorRollup.objects.filter(group=group, grain="h").get().count == 2000
    assert_backlogs_exact()


@pytest.mark.django_db
def test_a_requeue_that_fails_at_a_new_site_stores_that_sites_traceback():
    job = failing_entries(2)  # json_schema: its records miss their symbol
    first_site = set(DLQEntry.objects.values_list("traceback_head", flat=True))
    job.processor, job.config = "demo.trades", {}  # now they fail in demo.trades
    job.save()

    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)

    assert (run.succeeded, run.failed) == (0, 2)
    stored = list(DLQEntry.objects.select_related("traceback_head").order_by("pk"))
    expected = captured_tracebacks(job, [entry.payload for entry in stored])
    assert [entry.full_traceback for entry in stored] == [expected[0], expected[1]]
    assert "demo/processors.py" in expected[0]
    sites = {entry.traceback_head_id for entry in stored}
    assert len(sites) == 1 and None not in sites and not sites & first_site
    assert TracebackHead.objects.count() == 2


@pytest.mark.django_db
def test_requeue_all_matching_leaves_out_entries_newer_than_what_the_operator_saw():
    job = failing_entries(3)
    seen = DLQEntry.objects.order_by("-pk").first().pk
    batch, _ = submit_batch(job, [{"late": True}])
    process_batch(batch.pk)
    relax(job)
    run = requeue.run_here(RequeueScope.matching(job="orders", max_id=seen), RequeueOptions(), OPS)
    assert run.total == 3
    assert DLQEntry.objects.get(pk__gt=seen).status == "pending"
    assert DLQEntry.objects.filter(status="resolved").count() == 3


@pytest.mark.django_db
def test_an_entry_resolved_in_between_is_not_requeued():
    failing_entries(2)
    first = DLQEntry.objects.order_by("pk").first()
    DLQEntry.objects.filter(pk=first.pk).update(status="resolved")
    run = requeue.run_here(RequeueScope.of_ids([first.pk]), RequeueOptions(), OPS)
    assert (run.total, run.done) == (0, 0)
    assert not DLQAttempt.objects.filter(entry=first, kind="requeue").exists()


@pytest.mark.django_db
def test_a_dry_run_only_counts():
    job = failing_entries(4)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(dry_run=True), OPS)
    assert (run.status, run.total, run.done, run.dry_run) == ("finished", 4, 0, True)
    assert set(DLQEntry.objects.values_list("status", flat=True)) == {"pending"}
    assert counters(job).dlq_requeued == 0
    action = OperatorAction.objects.get()
    assert (action.action, action.dry_run, action.count) == ("requeue", True, 4)


@pytest.mark.django_db
def test_cancel_stops_a_run_and_leaves_the_rest_pending(settings, monkeypatch):
    settings.VELO_REQUEUE_CHUNK = 2
    job = failing_entries(6)
    relax(job)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    # Cancel as soon as the first chunk is done, from inside the run's own loop.
    original = lifecycle.reprocess

    def reprocess_then_cancel(claimed, run, **kwargs):
        result = original(claimed, run, **kwargs)
        requeue.cancel(run.pk, actor=OPS)
        return result

    monkeypatch.setattr(lifecycle, "reprocess", reprocess_then_cancel)
    requeue.execute_run(run.pk)
    run.refresh_from_db()
    assert (run.status, run.done) == ("cancelled", 2)
    assert DLQEntry.objects.filter(status="pending").count() == 4
    assert OperatorAction.objects.filter(action="cancel").count() == 1


@pytest.mark.django_db
def test_a_queued_run_cancelled_never_starts():
    failing_entries(2)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    assert requeue.cancel(run.pk, actor=OPS)
    assert requeue.execute_run(run.pk) is None
    run.refresh_from_db()
    assert (run.status, run.done) == ("cancelled", 0)


@pytest.mark.django_db
def test_the_canary_stops_the_run_when_the_processor_still_fails(settings):
    settings.VELO_REQUEUE_CHUNK = 50
    failing_entries(20)
    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(canary_size=5), OPS)
    assert (run.status, run.done, run.failed) == ("cancelled", 5, 5)
    assert "canary" in run.stop_reason
    # Only the sample was tried; the rest wait untouched.
    assert DLQEntry.objects.filter(attempts=1).count() == 15


@pytest.mark.django_db
def test_a_canary_that_passes_lets_the_run_finish():
    job = failing_entries(12)
    relax(job)
    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(canary_size=4), OPS)
    assert (run.status, run.done, run.succeeded) == ("finished", 12, 12)


@pytest.mark.django_db
def test_a_rate_limited_run_works_a_seconds_worth_then_waits_off_the_worker():
    job = failing_entries(60)
    relax(job)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=40), OPS)
    began = timezone.now()
    run = requeue.execute_run(run.pk)  # returns: no worker sleeps through the wait
    assert (run.status, run.done, run.succeeded) == ("queued", 40, 40)  # one second's worth
    assert (
        began + timedelta(seconds=0.9)
        <= run.next_attempt_at
        <= timezone.now() + timedelta(seconds=1)
    )
    assert run.dispatched_at is None  # for beat to send, once due
    assert not DLQEntry.objects.filter(status="requeued").exists()  # it holds nothing
    # Not due yet: beat does not send it, and a message that comes early does nothing.
    assert run.pk not in sweep.due_run_ids(timezone.now())
    assert requeue.execute_run(run.pk) is None
    assert run.pk in sweep.due_run_ids(run.next_attempt_at)

    RequeueRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())  # due now
    run = requeue.execute_run(run.pk)
    assert (run.status, run.done, run.succeeded, run.next_attempt_at) == ("finished", 60, 60, None)
    assert DLQAttempt.objects.filter(kind="requeue").count() == 60


@pytest.mark.django_db
def test_run_here_waits_out_the_pace_in_this_process():
    job = failing_entries(60)
    relax(job)
    began = time.monotonic()
    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=40), OPS)
    elapsed = time.monotonic() - began
    assert (run.status, run.done) == ("finished", 60)
    assert elapsed >= 0.9  # 40 in the first second, the last 20 after it
    first, last = (
        DLQAttempt.objects.filter(kind="requeue").order_by("pk").values_list("at", flat=True)[i]
        for i in (0, 40)
    )
    assert last - first >= timedelta(seconds=0.9)


@pytest.mark.django_db
def test_a_waiting_run_is_cancelled_at_once_and_never_resumed():
    job = failing_entries(5)
    relax(job)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=2), OPS)
    requeue.execute_run(run.pk)
    assert RequeueRun.objects.get(pk=run.pk).status == "queued"
    assert requeue.cancel(run.pk, actor=OPS)
    run.refresh_from_db()
    assert (run.status, run.done) == ("cancelled", 2)
    assert run.finished_at is not None
    RequeueRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    assert requeue.execute_run(run.pk) is None
    assert run.pk not in sweep.due_run_ids(timezone.now() + timedelta(hours=1))
    assert DLQEntry.objects.filter(status="pending").count() == 3


@pytest.mark.django_db
def test_a_cancel_during_a_chunk_ends_the_run_instead_of_its_wait():
    job = failing_entries(5)
    relax(job)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=2), OPS)
    RequeueRun.objects.filter(pk=run.pk).update(status="running", cancel_requested=True)
    run.refresh_from_db()
    ended = lifecycle._wait_until(run, timezone.now() + timedelta(seconds=30))
    assert (ended.status, ended.stop_reason) == ("cancelled", "cancelled by an operator")


def test_the_pace_makes_up_a_late_start_only_within_its_credit():
    start = timezone.now()
    run = RequeueRun(rate_limit=10)
    run.paced_from = None  # the first chunk: the pace starts with it
    assert lifecycle._next_due(run, start, 10) == start + timedelta(seconds=1)
    # Resumed 1.5 s after it was due (beat's tick, the message): the time is made up.
    late = run.paced_from + timedelta(seconds=1.5)
    assert lifecycle._next_due(run, late, 10) == start + timedelta(seconds=2)
    # Resumed an hour late (no beat): a new schedule, not a burst to catch up.
    later = run.paced_from + timedelta(hours=1)
    assert lifecycle._next_due(run, later, 5) == later + timedelta(seconds=0.5)


def test_a_paced_chunk_is_a_second_of_the_rate():
    assert lifecycle._chunk_size(RequeueRun(rate_limit=0.1), False, 2000) == 1
    assert lifecycle._chunk_size(RequeueRun(rate_limit=2.5), False, 2000) == 3
    assert lifecycle._chunk_size(RequeueRun(rate_limit=100_000), False, 2000) == 2000


@pytest.mark.django_db(transaction=True)
def test_two_requeues_asked_for_at_the_same_moment_start_one_run(settings):
    job = failing_entries(300)  # counting them keeps each request in its transaction a while
    barrier = threading.Barrier(2)
    started, refused, errors = [], [], []

    def start(i):
        try:
            barrier.wait()
            started.append(
                requeue.start_run(
                    RequeueScope.matching(job="orders"), RequeueOptions(), Actor(f"ops{i}", "admin")
                )
            )
        except requeue.ScopeHeld as exc:
            refused.append(exc)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert (len(started), len(refused)) == (1, 1)
    assert refused[0].run.pk == started[0].pk
    assert RequeueRun.objects.count() == 1
    # The one run attempts each entry once, though every one fails again.
    requeue.execute_run(started[0].pk)
    assert DLQAttempt.objects.filter(kind="requeue").count() == 300
    assert counters(job).dlq_requeued == 300


@pytest.mark.django_db
def test_a_filter_run_is_cut_at_the_newest_entry_when_it_starts():
    job = failing_entries(2)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
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
    ids = real + list(range(10_000, 10_000 + 2 * scope.ID_SLICE + 7))  # most no longer exist
    run = requeue.run_here(RequeueScope.of_ids(ids), RequeueOptions(), OPS)
    assert (run.total, run.done, run.succeeded) == (5, 5, 5)


@pytest.mark.django_db(transaction=True)  # outside a transaction, as a worker runs it
def test_a_run_starts_with_a_small_chunk_and_grows(settings, monkeypatch):
    settings.VELO_REQUEUE_CHUNK = 2000
    job = failing_entries(1300)
    relax(job)
    sizes, claim = [], lifecycle.claim

    def counting_claim(ids, run):
        sizes.append(len(ids))
        return claim(ids, run)

    monkeypatch.setattr(lifecycle, "claim", counting_claim)
    run = requeue.run_here(RequeueScope.matching(job=job.name), RequeueOptions(), OPS)
    assert (run.done, run.succeeded, sum(sizes)) == (1300, 1300, 1300)
    assert sizes[0] == lifecycle.FIRST_CHUNK
    assert all(later <= 4 * earlier for earlier, later in pairwise(sizes))
    assert max(sizes) > 200  # grown past the first chunks (each takes well under a second)


def test_chunks_shrink_for_slow_processors_and_grow_back(settings):
    settings.VELO_REQUEUE_CHUNK = 200
    assert lifecycle._next_size(200, 200, 200, 20.0) == 10  # 0.1 s an entry: ten a second
    assert lifecycle._next_size(10, 10, 10, 0.01) == 40  # fast again: growing back ...
    assert lifecycle._next_size(50, 50, 50, 0.01) == 200  # ... to the full chunk
    assert lifecycle._next_size(200, 200, 37, 9.0) == 200  # a short last chunk says nothing
    assert lifecycle._next_size(200, 200, 200, 1000.0) == 1
    # A chunk claimed ahead was asked for at the size before: growth goes on from the larger.
    assert lifecycle._next_size(40, 10, 10, 0.01) == 160


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
    entries.claim(list(DLQEntry.objects.values_list("pk", flat=True)), run)
    DLQEntry.objects.update(claimed_until=timezone.now() + timedelta(seconds=1))
    assert lifecycle._renew(run)
    run.refresh_from_db()
    assert run.heartbeat_at > timezone.now() - timedelta(seconds=5)
    assert all(
        until > timezone.now() + timedelta(seconds=60)
        for until in DLQEntry.objects.values_list("claimed_until", flat=True)
    )
    assert entries.recover_expired_claims() == 0


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

    run = requeue.run_here(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)

    assert (run.status, run.done, run.succeeded) == ("cancelled", 20, 20)
    statuses = dict(DLQEntry.objects.values_list("status").annotate(n=Count("pk")))
    assert statuses == {"resolved": 20, "pending": 80}
    assert counters(job).dlq_pending == 80
