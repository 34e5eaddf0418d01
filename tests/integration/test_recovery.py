"""Recovery in seconds with the default lease (300 s): a dead worker's batch is processed again as
soon as a worker is there, and the beat tick never waits behind batches."""

import os
import signal
import time

import pytest

from dlq.models import Batch, Job, JobCounters, WorkerInstance

from .conftest import wait_for_status
from .harness import Worker, batch_queue, control_queue, wait_for

pytestmark = pytest.mark.worker

RECORDS, SECONDS = 20, 0.25  # five seconds of work
# Far below the lease: a batch finished within this was not recovered by its lease running out.
BEFORE_THE_LEASE = 90


def _slow_job(name, seconds=SECONDS):
    return Job.objects.create(
        name=name,
        processor="demo.slow",
        config={"seconds": seconds},
        failure_strategy="send_to_dlq",
    )


def _assert_counted_once(body, job):
    assert (body["status"], body["processed"], body["attempts"]) == ("succeeded", RECORDS, 1)
    c = JobCounters.objects.get(job=job)
    assert (c.records_processed, c.batches_succeeded, c.batches_recovered) == (RECORDS, 1, 1)
    assert Batch.objects.get(pk=body["id"]).lost_attempts == 1


def _prefork(tmp_path, name, node=None, **kwargs):
    return Worker(tmp_path, name=name, pool="prefork", concurrency=1, node=node, **kwargs)


def test_a_worker_killed_mid_batch_is_recovered_as_soon_as_it_restarts(api, tmp_path):
    job = _slow_job("crash")
    node = f"crash-{os.getpid()}@%h"
    worker = _prefork(tmp_path, "crash", node).start()
    batch_id = api.submit("crash", [{"n": i} for i in range(RECORDS)])["batch_id"]
    wait_for_status(batch_id, ["running"])
    time.sleep(1)
    worker.kill()
    assert Batch.objects.get(pk=batch_id).status == "running"

    restarted = _prefork(tmp_path, "crash-restarted", node).start()
    started = time.monotonic()
    try:
        body = api.wait_until_final(batch_id, timeout=BEFORE_THE_LEASE)
        took = time.monotonic() - started
    finally:
        restarted.stop()
    _assert_counted_once(body, job)
    # The killed instance was declared dead by its successor; the successor, stopped
    # cleanly, says so itself.
    reasons = list(
        WorkerInstance.objects.filter(node_name__startswith=node.split("%")[0])
        .order_by("started_at")
        .values_list("dead_reason", flat=True)
    )
    assert [r.split(" by ")[0] for r in reasons] == ["succeeded", "stopped"]
    print(f"recovery after SIGKILL and restart: {took - RECORDS * SECONDS:.1f} s beyond the work")


def test_a_killed_pool_process_is_recovered_while_its_worker_lives(api, tmp_path):
    job = _slow_job("child")
    worker = _prefork(tmp_path, "child").start()
    try:
        batch_id = api.submit("child", [{"n": i} for i in range(RECORDS)])["batch_id"]
        wait_for_status(batch_id, ["running"])
        time.sleep(1)
        holder = Batch.objects.get(pk=batch_id).worker_pid
        assert holder and holder != worker.proc.pid  # a pool process, not the parent
        os.kill(holder, signal.SIGKILL)
        killed = time.monotonic()
        body = api.wait_until_final(batch_id, timeout=BEFORE_THE_LEASE)
        took = time.monotonic() - killed
        assert worker.proc.poll() is None
    finally:
        worker.stop()
    _assert_counted_once(body, job)
    print(f"recovery after SIGKILL of a pool process: {took - RECORDS * SECONDS:.1f} s beyond")


def test_the_tick_recovers_and_dispatches_while_every_batch_worker_slot_is_busy(api, tmp_path):
    """The only live batch worker sleeps in a record for minutes; another dies mid-batch.

    The tick runs on the control queue's own worker, so it still notices the
    dead worker and hands its batch out, and a worker that is free runs it.
    """
    hang = _slow_job("hang", seconds=600)
    innocent = _slow_job("innocent")
    control = Worker(tmp_path, name="control", queues=[control_queue()], concurrency=1).start()
    busy = _prefork(tmp_path, "busy", queues=[batch_queue()], beat=False).start()
    doomed = free = None
    try:
        hang_id = api.submit("hang", [{"n": 0}])["batch_id"]
        wait_for_status(hang_id, ["running"])
        doomed = _prefork(tmp_path, "doomed", queues=[batch_queue()], beat=False).start()
        innocent_id = api.submit("innocent", [{"n": i} for i in range(RECORDS)])["batch_id"]
        wait_for_status(innocent_id, ["running"])
        doomed.kill()

        # No batch worker is free: the tick alone finds the dead worker's batch and sends it.
        wait_for(
            lambda: (
                Batch.objects.filter(pk=innocent_id, status="queued", lost_attempts=1).exists()
                and Batch.objects.get(pk=innocent_id).dispatched_at is not None
            ),
            timeout=BEFORE_THE_LEASE,
            what="the tick to hand the dead worker's batch out again",
        )
        assert Batch.objects.get(pk=hang_id).status == "running"

        free = _prefork(tmp_path, "free", queues=[batch_queue()], beat=False).start()
        body = api.wait_until_final(innocent_id, timeout=BEFORE_THE_LEASE)
        _assert_counted_once(body, innocent)
        hung = Batch.objects.get(pk=hang_id)
        assert hung.status == "running"  # still asleep in its record, its worker alive
        assert WorkerInstance.objects.get(boot_id=hung.worker).dead_at is None
        assert JobCounters.objects.get(job=hang).batches_recovered == 0
    finally:
        for worker in (free, doomed, busy, control):
            if worker:
                worker.kill()
