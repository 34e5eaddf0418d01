"""The engine's failure modes: unstorable errors, lost attempts, held batches, leases, races.

Each test reproduced a bug found in review (or checks a suspicion that turned
out fine) and keeps it fixed.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from dlq import dispatch, sweep
from dlq.engine import process_batch
from dlq.engine.lease import recover_stalled
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQEntry, JobCounters
from dlq.processors import processor
from tests.conftest import BAD, GOOD, occurrences


@processor("review.surrogate", transactional=False)
def _surrogate(record, ctx):
    """A processor whose error message cannot be encoded (e.g. a surrogateescape'd file name)."""
    raise ValueError("cannot read header of " + b"\xff.csv".decode("utf-8", "surrogateescape"))


@processor("review.nul", transactional=False)
def _nul(record, ctx):
    """A processor whose error message quotes binary input (PostgreSQL text refuses NUL)."""
    raise ValueError("bad magic bytes '\x00\x01'")


@processor("review.slow_tx")  # transactional (the default for VELO_PROCESSORS callables too)
def _slow_tx(record, ctx):
    time.sleep(float(ctx.config.get("seconds", 0.5)))


@processor("review.multi", transactional=False)
def _multi(record, ctx):
    """Fails with the error type the record names: several error groups per batch."""
    kind = record.get("e")
    if kind:
        raise {"v": ValueError, "t": TypeError, "k": LookupError}[kind](f"bad {kind}")


def _is_pg():
    return connection.vendor == "postgresql"


def _due_now(batch):
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())


# --- 1. dispatch stamps dispatched_at AFTER publishing ----------------------


@pytest.mark.django_db
def test_retry_is_not_hidden_by_the_dispatch_stamp_of_the_attempt_before(make_job, monkeypatch):
    """A fast worker finishes the attempt before send() stamps dispatched_at: the retry is then
    invisible to the dispatcher for VELO_REDISPATCH_AFTER_SECONDS (300 s) instead of 1 s."""
    job = make_job(failure_strategy="retry_with_backoff", max_retries=3, retry_initial_delay=1)
    batch, _ = submit_batch(job, [BAD])
    # The broker hands the message to a worker that runs it before send() returns.
    monkeypatch.setattr(dispatch, "publish", lambda task_name, pk: process_batch(pk))
    dispatch.send([batch.pk])
    batch.refresh_from_db()
    assert batch.status == "retrying"
    due = batch.next_attempt_at + timedelta(seconds=1)
    assert batch.pk in sweep.due_batch_ids(due), (
        f"retry due at {batch.next_attempt_at} is hidden: dispatched_at={batch.dispatched_at}"
    )


# --- 2. a deterministic error while recording an attempt loops forever ------


@pytest.mark.django_db
@pytest.mark.parametrize("proc", ["review.surrogate", "review.nul"])
def test_an_unstorable_error_message_does_not_loop_forever(make_job, proc):
    if proc == "review.nul" and not _is_pg():
        pytest.skip("SQLite stores NUL")
    job = make_job(processor=proc, failure_strategy="send_to_dlq")
    batch, _ = submit_batch(job, [GOOD, GOOD])
    raised = 0
    for _ in range(20):  # 20 s of a real worker: beat redispatches every second
        _due_now(batch)
        try:
            process_batch(batch.pk)
        except Exception:
            raised += 1
        batch.refresh_from_db()
        if batch.status not in Batch.IN_FLIGHT:
            break
    assert batch.status not in Batch.IN_FLIGHT, (
        f"still {batch.status} after {raised} failed attempts; lost_attempts="
        f"{batch.lost_attempts}, attempts={batch.attempts}: released and retried forever"
    )


# --- 3. giving up on lost workers while failures are held (backpressure) ----


def _held_batch(make_job, settings):
    settings.VELO_MAX_LOST_ATTEMPTS = 3
    job = make_job(failure_strategy="send_to_dlq", dlq_max_size=10, dlq_full_policy="backpressure")
    JobCounters.objects.filter(job=job).update(dlq_pending=9)
    batch, _ = submit_batch(job, [GOOD, BAD, BAD])
    assert process_batch(batch.pk) == "retrying"  # index 1 stored, index 2 held
    # Its workers then die while it retries the held failure (lease expiries).
    Batch.objects.filter(pk=batch.pk).update(lost_attempts=3, next_attempt_at=timezone.now())
    return job, batch


@pytest.mark.django_db
def test_give_up_on_a_held_batch_does_not_count_the_batch_again(make_job, settings):
    job, batch = _held_batch(make_job, settings)
    for _ in range(3):  # DLQ still full: the batch keeps waiting
        _due_now(batch)
        process_batch(batch.pk)
    batch.refresh_from_db()
    c = JobCounters.objects.get(job=job)
    assert (c.records_processed, c.records_failed, batch.processed) == (3, 2, 3), (
        f"processed={c.records_processed} failed={c.records_failed}: counted on every give-up"
    )
    held = [letter["index"] for letter in batch.held_failures["letters"]]
    assert held == [2], f"held letters replaced by {held} (the good record 0 included)"


@pytest.mark.django_db
def test_give_up_on_a_held_batch_finishes_once_there_is_room(make_job, settings):
    job, batch = _held_batch(make_job, settings)
    JobCounters.objects.filter(job=job).update(dlq_pending=0)  # an operator makes room
    try:
        status = process_batch(batch.pk)
    except Exception as exc:  # IntegrityError: (batch, index 1) already stored
        status = f"raised {type(exc).__name__}"
    batch.refresh_from_db()
    assert status in ("partial", "failed"), (
        f"{status}; batch back to {batch.status} at {batch.next_attempt_at}, and the same "
        "give-up runs again every second"
    )
    assert DLQEntry.objects.filter(batch=batch).count() == 2


# --- 4. the transactional path never renews its lease -----------------------


def _run_in_thread(batch_id, out):
    try:
        out["status"] = process_batch(batch_id)
    except Exception as exc:
        out["status"] = exc
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("proc", ["review.slow_tx", "demo.slow"])
def test_a_live_worker_keeps_its_claim_past_the_lease(make_job, settings, proc):
    """A healthy worker on a long batch must not be declared lost (PostgreSQL: no write lock)."""
    if not _is_pg():
        pytest.skip("SQLite serialises writers: the long transaction holds the write lock (README)")
    settings.VELO_BATCH_LEASE_SECONDS = 1.0
    job = make_job(processor=proc, config={"seconds": 0.5}, failure_strategy="send_to_dlq")
    batch, _ = submit_batch(job, [{"n": i} for i in range(4)])  # 2 s of work
    out = {}
    worker = threading.Thread(target=_run_in_thread, args=(batch.pk, out))
    worker.start()
    time.sleep(1.5)
    recovered = recover_stalled()  # what beat does every second
    worker.join()
    batch.refresh_from_db()
    assert (recovered, out["status"], batch.lost_attempts) == (0, "succeeded", 0), (
        f"recovered={recovered}, attempt returned {out['status']!r}, losses={batch.lost_attempts}"
    )


# --- 6. suspected, expected fine: capacity and lock order under concurrency --


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_exceed_dlq_capacity_and_do_not_deadlock(make_job):
    if not _is_pg():
        pytest.skip("PostgreSQL row locks")
    job = make_job(processor="review.multi", failure_strategy="send_to_dlq", dlq_max_size=7)
    # Several groups per batch, in different orders, to exercise ErrorGroup lock order.
    batches = []
    for i in range(8):
        recs = [{"e": "v"}, {"e": "t"}, {"ok": 1}, {"e": "k"}]
        batches.append(submit_batch(job, recs[::-1] if i % 2 else recs)[0].pk)

    outs = [{} for _ in batches]
    threads = [
        threading.Thread(target=_run_in_thread, args=(b, o))
        for b, o in zip(batches, outs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o["status"] == "partial" for o in outs), outs
    c = JobCounters.objects.get(job=job)
    failed = sum(Batch.objects.get(pk=b).failed for b in batches)
    assert DLQEntry.objects.filter(job=job).count() == c.dlq_pending == c.dlq_added == 7
    assert c.dlq_rejected == failed - 7
    assert occurrences() == failed
