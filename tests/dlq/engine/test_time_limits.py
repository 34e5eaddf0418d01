"""Time limits through the engine (no worker): a record over record_timeout goes through its
job's strategy like any failure; an attempt over batch_timeout commits what it finished and
leaves the rest to a new attempt; the watchdog's marks fail a record without running it."""

import subprocess
import time

import pytest

from dlq.engine import process_batch, watchdog
from dlq.engine.lease import claim_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQEntry, JobCounters
from dlq.processors.limits import SLOT
from tests.conftest import occurrences

pytestmark = pytest.mark.django_db

HANG = {"hang": "sleep"}
QUICK = {}


def slow(seconds, n):
    return [{"hang": "sleep", "seconds": seconds}] * n


def hang_job(make_job, **fields):
    fields.setdefault("record_timeout", 0.3)
    return make_job("hangs", processor="test.hangs", **fields)


def test_a_timed_out_record_is_dead_lettered_as_record_timeout_and_counted_once(
    make_job, run_batch
):
    job = hang_job(make_job, failure_strategy="send_to_dlq")
    batch = run_batch(job, [QUICK, HANG, QUICK])
    assert (batch.status, batch.processed, batch.failed, batch.dlq_added) == ("partial", 3, 1, 1)
    entry = DLQEntry.objects.get(job=job)
    assert (entry.index, entry.error_type) == (1, "RecordTimeout")
    c = JobCounters.objects.get(job=job)
    assert (c.records_failed, c.record_timeouts) == (1, 1)


def test_a_timed_out_record_is_retried_then_dead_lettered(make_job, run_batch):
    job = hang_job(make_job, failure_strategy="retry_with_backoff", max_retries=1)
    batch = run_batch(job, [QUICK, HANG])
    assert (batch.status, batch.attempts, batch.processed, batch.failed) == ("partial", 2, 3, 2)
    assert DLQEntry.objects.get(job=job).error_type == "RecordTimeout"
    assert occurrences(job_name="hangs") == 2
    assert JobCounters.objects.get(job=job).record_timeouts == 2


def test_an_attempt_over_batch_timeout_commits_what_it_did_and_continues(make_job, run_batch):
    job = hang_job(make_job, failure_strategy="log_and_continue", batch_timeout=0.5)
    batch = run_batch(job, [*slow(0.15, 6), HANG])
    # Every record attempted exactly once, over several attempts; the hang timed out.
    assert (batch.status, batch.processed, batch.failed, batch.dlq_added) == ("partial", 7, 1, 1)
    assert batch.attempts > 1
    assert batch.batch_timeouts == batch.attempts - 1
    c = JobCounters.objects.get(job=job)
    assert (c.records_processed, c.batch_retries, c.batches_partial) == (7, batch.attempts - 1, 1)


def test_continuations_do_not_use_up_retries(make_job, run_batch):
    job = hang_job(
        make_job, failure_strategy="retry_with_backoff", max_retries=1, batch_timeout=0.4
    )
    batch = run_batch(job, [*slow(0.15, 6), HANG])
    assert batch.status == "partial"
    # The hang ran twice (its first try and its one retry), whatever the continuations.
    assert occurrences(job_name="hangs") == 2
    assert batch.processed == 8


def test_fail_batch_over_its_batch_timeout_fails_the_batch(make_job, run_batch):
    job = hang_job(make_job, failure_strategy="fail_batch", max_retries=1, batch_timeout=0.5)
    batch = run_batch(job, slow(0.2, 5))
    assert (batch.status, batch.attempts, batch.processed, batch.dlq_added) == ("failed", 2, 10, 5)
    assert set(DLQEntry.objects.values_list("error_type", flat=True)) == {"BatchTimeout"}
    assert JobCounters.objects.get(job=job).record_timeouts == 0


def test_a_record_the_watchdog_stopped_fails_without_running_and_the_rest_run(make_job):
    job = hang_job(make_job, failure_strategy="send_to_dlq", record_timeout=5)
    batch, _ = submit_batch(job, [QUICK, QUICK, QUICK])
    claim = claim_batch(batch.pk)
    assert watchdog.mark_timed_out(batch.pk, claim.token, 1, 5.0)
    batch.refresh_from_db()
    assert (batch.status, batch.claim_token, batch.lost_attempts) == ("queued", "", 0)
    assert batch.timed_out == {"1": 5.0}
    # The stuck attempt's claim is gone: it could commit nothing now.
    assert not watchdog.mark_timed_out(batch.pk, claim.token, 1, 5.0)

    assert process_batch(batch.pk) == "partial"
    batch.refresh_from_db()
    assert (batch.processed, batch.failed, batch.dlq_added, batch.timed_out) == (3, 1, 1, None)
    entry = DLQEntry.objects.get(job=job)
    assert (entry.index, entry.error_type) == (1, "RecordTimeout")
    assert "watchdog" in entry.error_message
    assert JobCounters.objects.get(job=job).record_timeouts == 1


def test_the_watchdog_kills_a_process_past_its_hard_limit_and_marks_its_batch(make_job, tmp_path):
    job = hang_job(make_job, record_timeout=1)
    batch, _ = submit_batch(job, [QUICK, QUICK])
    claim = claim_batch(batch.pk)
    stuck = subprocess.Popen(["sleep", "60"])
    busy = subprocess.Popen(["sleep", "60"])
    now = time.monotonic()
    (tmp_path / str(stuck.pid)).write_bytes(
        SLOT.pack(batch.pk, claim.token.encode(), 1, now - 3, 1)
    )
    (tmp_path / str(busy.pid)).write_bytes(SLOT.pack(batch.pk, claim.token.encode(), 0, now, 1))
    (tmp_path / "999999999").write_bytes(SLOT.pack(0, b"", -1, 0, 0))  # a process long gone
    try:
        assert watchdog.enforce(tmp_path, grace=1.0) == [stuck.pid]
        assert stuck.wait(timeout=5) == -9
        assert busy.poll() is None
    finally:
        busy.kill()
        stuck.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(busy.pid)]
    batch.refresh_from_db()
    assert (batch.status, batch.timed_out) == (Batch.Status.QUEUED, {"1": 1.0})


def test_failures_held_for_dlq_room_keep_the_records_the_attempt_left(make_job):
    """backpressure + batch_timeout: the attempt's failures wait for room, and once stored
    the records it did not reach still run; nothing is lost or run twice."""
    job = hang_job(
        make_job,
        failure_strategy="send_to_dlq",
        dlq_max_size=1,
        dlq_full_policy="backpressure",
        batch_timeout=0.5,
    )
    JobCounters.objects.filter(job=job).update(dlq_pending=1)  # full
    batch, _ = submit_batch(job, [HANG, *slow(0.1, 5)])

    def attempt():
        Batch.objects.filter(pk=batch.pk).update(next_attempt_at=None)
        process_batch(batch.pk)
        batch.refresh_from_db()

    attempt()
    assert batch.status == "retrying" and batch.held_failures["left"]
    left = batch.held_failures["left"]
    attempt()  # still full: held again, the records left kept
    assert batch.held_failures["left"] == left
    JobCounters.objects.filter(job=job).update(dlq_pending=0)  # room
    for _ in range(10):
        attempt()
        if batch.status not in Batch.IN_FLIGHT:
            break
    assert (batch.status, batch.processed, batch.failed, batch.dlq_added) == ("partial", 6, 1, 1)
    assert DLQEntry.objects.get(job=job).error_type == "RecordTimeout"
