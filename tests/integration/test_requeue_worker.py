"""Requeue runs on a real worker: background progress, and a worker killed mid-run."""

import pytest

from dlq import requeue
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import DLQAttempt, DLQEntry, Job, JobCounters, RequeueRun
from dlq.requeue import RequeueOptions, RequeueScope

from .harness import Worker, wait_for

OPS = Actor("ops", "admin")

pytestmark = pytest.mark.worker


def dead_letters(n):
    job = Job.objects.create(
        name="orders",
        processor="json_schema",
        failure_strategy="send_to_dlq",
        config={"schema": {"type": "object", "required": ["symbol"]}},
    )
    batch, _ = submit_batch(job, [{"n": i} for i in range(n)])
    process_batch(batch.pk)
    job.config = {"schema": {"type": "object"}}  # the fix
    job.save()
    return job


def wait_for_run(run_id, statuses=("finished", "cancelled"), timeout=60):
    return wait_for(
        lambda: RequeueRun.objects.filter(pk=run_id, status__in=statuses).first(),
        timeout=timeout,
        what=f"requeue run {run_id} to reach {statuses}",
    )


def test_a_background_run_is_worked_through_by_the_worker(worker):
    job = dead_letters(30)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    run = wait_for_run(run.pk)
    assert (run.status, run.total, run.done, run.succeeded) == ("finished", 30, 30, 30)
    assert JobCounters.objects.get(job=job).dlq_pending == 0


def test_a_worker_killed_mid_run_loses_nothing_and_processes_each_entry_once(worker, tmp_path):
    job = dead_letters(40)
    run = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=10), OPS)
    wait_for(lambda: RequeueRun.objects.get(pk=run.pk).done >= 8, what="a few entries done")
    worker.kill()
    replacement = Worker(
        tmp_path, name="replacement", VELO_BATCH_LEASE_SECONDS=3, VELO_REQUEUE_CLAIM_SECONDS=3
    ).start()
    try:
        run = wait_for_run(run.pk, timeout=90)
    finally:
        replacement.stop()
    assert run.status == "finished"
    assert set(DLQEntry.objects.values_list("status", flat=True)) == {"resolved"}
    # Exactly one requeue attempt per entry, whatever the crash interrupted.
    assert DLQAttempt.objects.filter(kind="requeue").count() == 40
    c = JobCounters.objects.get(job=job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (0, 40, 40)
