"""Figure 10: recovery after SIGKILL: a worker killed mid-batch, restarted, with the default lease.

A prefork worker (concurrency 1, node name fixed as under a supervisor) runs a
batch of demo.slow records; a second or so in, its whole process group is
SIGKILLed and the same worker started again. The figure is the time from the
restarted worker saying it is ready to the batch's `succeeded`, minus the work
left (every record: nothing of a killed attempt is committed). The beat tick
runs on a control worker of its own, as deploy/ runs it. With the lease alone
(before worker liveness) this was VELO_BATCH_LEASE_SECONDS, 300 s.
"""

import os
import signal
import sys
import time

from django.conf import settings

from dlq.ingest import submit_batch
from dlq.models import Batch

from .. import data, procs
from ..environment import CONTROL_QUEUE, LOG_DIR, QUEUE, child_env
from ..timing import Row, median

JOB = "bench-recovery"
RECORDS, SECONDS = 10, 0.2
GOAL_SECONDS = 15.0


def _celery(name, *args, ready):
    """`celery -A velo_site ARGS…` as a process of the benchmark's, started."""
    argv = [sys.executable, "-m", "celery", "-A", "velo_site", *args]
    process = procs.Process(name, argv, child_env())
    try:
        return process.start(lambda: ready(process.log()))
    except BaseException:
        process.kill()
        raise


def _worker(name, queue, *extra):
    return _celery(
        name,
        "worker",
        "--queues",
        queue,
        "--loglevel",
        "INFO",
        "--hostname",
        f"{name}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        *extra,
        ready=lambda log: "ready." in log,
    )


def _beat():
    schedule = str(LOG_DIR / "recovery-beat-schedule")
    return _celery(
        "recovery-beat", "beat", "--schedule", schedule, ready=lambda log: "is starting." in log
    )


def _batch_worker():
    return _worker("recovery-worker", QUEUE, "--pool", "prefork", "--concurrency", "1")


def _wait(batch_id, status, timeout):
    procs.wait_for(
        lambda: Batch.objects.filter(pk=batch_id, status=status).exists(),
        timeout=timeout,
        interval=0.05,
        what=f"batch {batch_id} to be {status}",
    )


def run(quick, log):
    runs = 3 if quick else 5
    (job,) = data.create_jobs([JOB], processor="demo.slow", config={"seconds": SECONDS})
    started = []
    seconds, startups = [], []
    try:
        started.append(
            _worker("recovery-control", CONTROL_QUEUE, "--pool", "threads", "--concurrency", "2")
        )
        started.append(_beat())
        worker = _batch_worker()
        started.append(worker)
        for _ in range(runs):
            batch, _ = submit_batch(job, [{"n": i} for i in range(RECORDS)])
            _wait(batch.pk, "running", timeout=60)
            time.sleep(RECORDS * SECONDS / 3)
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(10)
            killed = time.monotonic()
            worker = _batch_worker()
            started.append(worker)
            ready = time.monotonic()
            startups.append(ready - killed)
            _wait(batch.pk, "succeeded", timeout=600)
            seconds.append(time.monotonic() - ready - RECORDS * SECONDS)
            assert Batch.objects.get(pk=batch.pk).processed == RECORDS
    finally:
        for process in started:
            process.kill()
    log(f"  recovery after restart, s: {[round(s, 1) for s in seconds]}")
    data.drop_job(JOB)
    return [
        Row(
            "10 recovery after SIGKILL",
            median(seconds),
            GOAL_SECONDS,
            "s",
            1.0,
            False,
            "<= 15 s",
            note=f"median of {runs}: restarted worker ready -> batch succeeded, minus its "
            f"{RECORDS * SECONDS:.0f} s of work; restart itself took "
            f"{median(startups):.1f} s; reference is the goal, a constant (the lease alone "
            f"took {settings.VELO_BATCH_LEASE_SECONDS:.0f} s)",
        )
    ]
