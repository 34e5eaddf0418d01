"""Time limits on a real prefork worker: a record that sleeps, backtracks in C holding the
GIL, or blocks on a socket that never answers fails with RecordTimeout; one that swallows
the soft limit has its pool process killed by the watchdog; the rest of each batch is done,
and the worker is free for the next batch."""

import pytest

from dlq import requeue
from dlq.actors import Actor
from dlq.models import Batch, DLQAttempt, DLQEntry, Job, JobCounters, RequeueRun

from .harness import Worker, wait_for

pytestmark = pytest.mark.worker

QUICK = {}


class PreforkWorker(Worker):
    """The harness's worker on the prefork pool (its watchdog needs processes to kill),
    with one pool process: a stuck record would leave no other to run the next batch."""

    def __init__(self, log_dir, **env):
        super().__init__(log_dir, name="prefork", **env)
        pool = self.argv.index("--pool")
        self.argv[pool + 1] = "prefork"
        self.argv[self.argv.index("--concurrency") + 1] = "1"


@pytest.fixture
def prefork(transactional_db, tmp_path):
    started = PreforkWorker(tmp_path, VELO_RECORD_TIMEOUT_GRACE_SECONDS=1).start()
    yield started
    started.stop()
    print(f"--- worker log (tail)\n{started.log()[-6000:]}")


def hang_job(name, **fields):
    fields.setdefault("record_timeout", 1)
    fields.setdefault("failure_strategy", "send_to_dlq")
    return Job.objects.create(name=name, processor="test.hangs", **fields)


def final(api, batch_id):
    body = api.wait_until_final(batch_id, timeout=90)
    return body["status"], body["processed"], body["failed"], body["dlq_added"]


def test_sleep_regex_and_socket_reads_time_out_and_the_worker_moves_on(prefork, api, silent_server):
    hang_job("hangs")
    hangs = {
        "sleep": {"hang": "sleep"},
        "regex": {"hang": "regex"},
        "socket": {"hang": "socket", "port": silent_server},
    }
    for how, record in hangs.items():
        batch_id = api.submit("hangs", [QUICK, record, QUICK])["batch_id"]
        assert final(api, batch_id) == ("partial", 3, 1, 1), how
        entry = DLQEntry.objects.get(batch_id=batch_id)
        assert (entry.index, entry.error_type) == (1, "RecordTimeout"), how
        # Stopped inside its pool process by the soft limit: no process killed.
        assert "interrupted" in entry.error_message, how
    assert "killing pool process" not in prefork.log()
    innocent = api.submit("hangs", [QUICK] * 5)["batch_id"]
    assert final(api, innocent) == ("succeeded", 5, 0, 0)
    c = JobCounters.objects.get(job__name="hangs")
    assert (c.records_processed, c.records_failed, c.record_timeouts) == (14, 3, 3)


def test_a_record_that_swallows_the_soft_limit_is_stopped_by_the_watchdog(prefork, api):
    hang_job(
        "stubborn", failure_strategy="retry_with_backoff", max_retries=1, retry_initial_delay=0.2
    )
    batch_id = api.submit("stubborn", [QUICK, {"hang": "stubborn"}, QUICK])["batch_id"]
    # Killed twice (the first try and its retry); each killed attempt committed nothing.
    assert final(api, batch_id) == ("partial", 4, 2, 1)
    batch = Batch.objects.get(pk=batch_id)
    assert (batch.attempts, batch.lost_attempts, batch.timed_out) == (2, 0, None)
    entry = DLQEntry.objects.get(batch_id=batch_id)
    assert (entry.index, entry.error_type) == (1, "RecordTimeout")
    assert "watchdog" in entry.error_message
    assert prefork.log().count("killing pool process") == 2
    innocent = api.submit("stubborn", [QUICK] * 5)["batch_id"]
    assert final(api, innocent) == ("succeeded", 5, 0, 0)
    assert JobCounters.objects.get(job__name="stubborn").record_timeouts == 2


def test_a_requeued_entry_that_swallows_the_soft_limit_is_stopped_once_and_its_run_ends(
    prefork, api
):
    """The hard limit holds for requeues too: the watchdog kills the pool process, the run
    resumes and fails that entry with RecordTimeout without running it again."""
    hang_job("stubborn-requeue")
    batch_id = api.submit("stubborn-requeue", [QUICK, {"hang": "stubborn"}])["batch_id"]
    assert final(api, batch_id) == ("partial", 2, 1, 1)
    entry = DLQEntry.objects.get(batch_id=batch_id)
    run = requeue.start_run(
        requeue.RequeueScope.matching(job="stubborn-requeue"),
        requeue.RequeueOptions(),
        Actor.shell(),
    )
    run = wait_for(
        lambda: RequeueRun.objects.filter(pk=run.pk, status="finished").first(),
        timeout=90,
        what="the requeue run to finish",
    )
    assert (run.done, run.succeeded, run.failed) == (1, 0, 1)
    entry.refresh_from_db()
    assert (entry.status, entry.error_type, entry.attempts) == ("pending", "RecordTimeout", 2)
    assert "watchdog" in entry.error_message
    assert DLQAttempt.objects.filter(requeue_run=run).count() == 1
    assert prefork.log().count("killing pool process") == 2  # the batch's, then the run's
    assert JobCounters.objects.get(job__name="stubborn-requeue").record_timeouts == 2


def test_a_batch_over_its_batch_timeout_finishes_over_several_attempts(prefork, api):
    hang_job("long", batch_timeout=1.5)
    records = [{"hang": "sleep", "seconds": 0.4}] * 8
    batch_id = api.submit("long", records)["batch_id"]
    assert final(api, batch_id) == ("succeeded", 8, 0, 0)
    batch = Batch.objects.get(pk=batch_id)
    assert batch.attempts >= 2
    assert batch.batch_timeouts == batch.attempts - 1
    assert JobCounters.objects.get(job__name="long").records_processed == 8
