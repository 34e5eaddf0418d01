"""Requeue runs on a real worker: background progress, and a worker killed mid-run."""

import time

import pytest

from dlq import requeue
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQAttempt, DLQEntry, Job, JobCounters, RequeueRun
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


@pytest.fixture
def one_slot_worker(transactional_db, tmp_path):
    """A worker with one pool slot (beat's tick takes it too, for a moment)."""
    started = Worker(
        tmp_path,
        name="one-slot",
        concurrency=1,
        VELO_BATCH_LEASE_SECONDS=3,
        VELO_REQUEUE_CLAIM_SECONDS=3,
    ).start()
    yield started
    started.stop()
    print(f"--- worker log (tail)\n{started.log()[-4000:]}")


def test_a_rate_limited_run_holds_no_worker_and_a_cancel_ends_it_within_a_second(
    one_slot_worker,
):
    dead_letters(10)
    # One entry a chunk, then two seconds off the worker before the next.
    run = requeue.start_run(
        RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=0.5), OPS
    )
    wait_for(
        lambda: RequeueRun.objects.filter(pk=run.pk, status="queued", done__gte=1).exists(),
        what="the run to work its first chunk and wait",
    )
    # While it waits, the one slot is free: an innocent batch runs through.
    other = Job.objects.create(name="innocent", processor="json_schema", config={"schema": {}})
    batch, _ = submit_batch(other, [{"n": 1}])
    wait_for(
        lambda: Batch.objects.filter(pk=batch.pk, status="succeeded").exists(),
        timeout=15,
        what="the innocent batch to run beside the paced run",
    )
    run.refresh_from_db()
    assert run.status in RequeueRun.ACTIVE and run.done < run.total
    requeue.cancel(run.pk, actor=OPS)
    run = wait_for_run(run.pk, timeout=1.0)
    assert run.status == "cancelled"
    done = run.done
    # Never resumed: its entries stay as they were left.
    time.sleep(3)  # a few of its paces: nothing resumes it
    run.refresh_from_db()
    assert run.done == done
    assert DLQEntry.objects.filter(status="pending").count() == 10 - done
    assert not DLQEntry.objects.filter(status="requeued").exists()


def test_the_admins_requeue_runs_on_a_worker_and_the_entry_page_shows_the_result(
    worker, client, django_user_model
):
    dead_letters(1)
    entry = DLQEntry.objects.get()
    client.force_login(django_user_model.objects.create_superuser("ops", "o@example.com", "pw"))
    page = client.post(f"/admin/dlq/dlqentry/{entry.pk}/requeue/", follow=True)
    following = page.redirect_chain[-1][0]
    run = RequeueRun.objects.get()
    assert following.endswith(f"?requeue_run={run.pk}")
    wait_for_run(run.pk)  # the worker worked it, not the request
    shown = client.get(following, follow=True)
    assert [str(m) for m in shown.context["messages"]] == [f"Entry {entry.pk} resolved."]
    entry.refresh_from_db()
    assert entry.status == "resolved"
    assert DLQAttempt.objects.get(kind="requeue").started_by == "ops"


def test_two_runs_over_one_filter_attempt_each_entry_once(worker):
    job = dead_letters(30)
    job.config = {"schema": {"type": "object", "required": ["symbol"]}}  # still failing
    job.save()
    first = requeue.start_run(
        RequeueScope.matching(job="orders"), RequeueOptions(rate_limit=20), OPS
    )
    with pytest.raises(requeue.ScopeHeld) as refused:
        requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    assert refused.value.run.pk == first.pk
    first = wait_for_run(first.pk)
    assert (first.status, first.failed) == ("finished", 30)
    # Each failed again, once: not once per run.
    assert DLQAttempt.objects.filter(kind="requeue").count() == 30
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("pending", 2)}
    # Once it has ended, the entries are free for the next run.
    assert requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS).total == 30
