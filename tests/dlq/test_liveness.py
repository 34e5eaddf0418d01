"""Worker liveness: a dead worker's claims go back at once, a live one's never, an outage proves
nothing; exactly-once holds when a claim is handed out again."""

import os
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from common import workers
from dlq import liveness, requeue, sweep
from dlq.actors import Actor
from dlq.engine.lease import LostClaim, claim_batch, recover_stalled
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQEntry, JobCounters, RegroupRun, RequeueRun, WorkerInstance
from dlq.requeue import RequeueOptions, RequeueScope, entries
from tests.conftest import BAD, GOOD
from tests.dlq.factories import failing_entries

pytestmark = pytest.mark.django_db
OPS = Actor("ops", "admin")


@pytest.fixture
def as_worker():
    """Make claims in this process as a worker instance would; return its identity."""
    identity = workers.start("velo-test@host")
    liveness.register(identity, pool_pids=[os.getpid()])
    yield identity
    workers.forget()


def _age(identity, seconds, **fields):
    """Move an instance's last beat (and what else is given) `seconds` into the past."""
    WorkerInstance.objects.filter(boot_id=identity.boot_id).update(
        last_seen=timezone.now() - timedelta(seconds=seconds), **fields
    )


def _witness(seconds=60):
    """Another worker, beating without a break for `seconds` up to now."""
    now = timezone.now()
    return WorkerInstance.objects.create(
        boot_id=os.urandom(16).hex(),
        node_name="witness@host",
        hostname="host",
        pid=1,
        started_at=now - timedelta(seconds=seconds),
        last_seen=now,
        up_since=now - timedelta(seconds=seconds),
    )


def _dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def batch(make_job):
    return submit_batch(make_job(failure_strategy="send_to_dlq"), [GOOD, BAD])[0]


def test_a_claim_records_the_worker_instance_and_pool_process_holding_it(as_worker, batch):
    claim_batch(batch.pk)
    batch.refresh_from_db()
    assert (batch.worker, batch.worker_pid) == (as_worker.boot_id, os.getpid())
    assert batch.claimed_at is not None


def test_a_claim_made_outside_a_worker_names_no_holder_and_waits_for_its_lease(batch):
    claim_batch(batch.pk)
    assert Batch.objects.get(pk=batch.pk).worker == ""
    assert recover_stalled() == 0


def test_a_restarted_worker_hands_back_its_predecessors_claims_at_once(as_worker, batch):
    claim_batch(batch.pk)
    # The predecessor's pid is gone; its successor takes the same node name.
    WorkerInstance.objects.filter(boot_id=as_worker.boot_id).update(pid=_dead_pid())
    successor = workers.start(as_worker.node_name)
    liveness.register(successor, pool_pids=[os.getpid()])
    assert WorkerInstance.objects.get(boot_id=as_worker.boot_id).dead_at is not None

    assert recover_stalled() == 1
    batch.refresh_from_db()
    assert (batch.status, batch.lost_attempts, batch.claim_token) == ("queued", 1, "")
    assert batch.last_error == "attempt lost: its worker died or stopped"
    assert JobCounters.objects.get(job=batch.job).batches_recovered == 1
    assert recover_stalled() == 0  # counted once


def test_a_worker_of_the_same_name_that_is_still_running_is_not_declared_dead(as_worker):
    WorkerInstance.objects.filter(boot_id=as_worker.boot_id).update(pid=os.getppid())
    liveness.register(workers.start(as_worker.node_name), pool_pids=[])
    assert WorkerInstance.objects.get(boot_id=as_worker.boot_id).dead_at is None


def test_a_silent_worker_is_dead_once_another_has_been_heard_all_along(as_worker, batch):
    claim_batch(batch.pk)
    _age(as_worker, 11)
    assert recover_stalled() == 0  # nobody has been heard for the whole time: an outage?
    _witness()
    assert recover_stalled() == 1
    assert Batch.objects.get(pk=batch.pk).last_error.endswith("its worker stopped beating")


def test_after_a_database_outage_every_beat_is_old_and_no_worker_is_declared_dead(as_worker, batch):
    claim_batch(batch.pk)
    _age(as_worker, 30)
    witness = _witness()
    # The witness's beats broke off too, and came back just now.
    WorkerInstance.objects.filter(pk=witness.pk).update(up_since=timezone.now())
    assert recover_stalled() == 0
    assert Batch.objects.get(pk=batch.pk).status == "running"


def test_a_claim_whose_pool_process_died_is_handed_back_while_the_worker_lives(as_worker, batch):
    claim_batch(batch.pk)
    # The next beat lists a replacement pool process, not the one holding the claim.
    liveness.beat(as_worker.boot_id, [os.getpid() + 1], up_since=timezone.now())
    _witness()
    assert recover_stalled() == 1
    assert Batch.objects.get(pk=batch.pk).last_error.endswith("its pool process died")


def test_a_pool_process_forked_after_the_last_beat_keeps_its_claim(as_worker, batch):
    liveness.beat(
        as_worker.boot_id, [], up_since=timezone.now(), now=timezone.now() - timedelta(seconds=1)
    )
    claim_batch(batch.pk)  # by a pool process the last beat could not know of
    assert recover_stalled() == 0


def test_a_claim_naming_an_unknown_worker_is_recovered_only_once_it_is_old(as_worker, batch):
    claim_batch(batch.pk)
    WorkerInstance.objects.all().delete()
    assert recover_stalled() == 0  # the worker may not have written its row yet
    Batch.objects.filter(pk=batch.pk).update(claimed_at=timezone.now() - timedelta(seconds=11))
    assert recover_stalled() == 1


def test_the_old_holder_of_a_handed_out_batch_cannot_commit(as_worker, batch):
    stale = claim_batch(batch.pk)
    liveness.mark_stopped(as_worker.boot_id)
    assert recover_stalled() == 1
    assert claim_batch(batch.pk) is not None
    with pytest.raises(LostClaim):
        stale.lock_batch()


def test_a_requeue_run_whose_worker_died_is_queued_again_with_its_entries_pending(as_worker):
    job = failing_entries(3)
    run = requeue.create_run(RequeueScope.matching(job=job.name), RequeueOptions(), OPS)
    RequeueRun.objects.filter(pk=run.pk).update(
        status="running", claim_token="old", heartbeat_at=timezone.now(), **_held_here()
    )
    run.refresh_from_db()
    held = entries.claim(list(DLQEntry.objects.values_list("pk", flat=True)), run)
    liveness.mark_stopped(as_worker.boot_id)

    assert requeue.recover_stalled_runs() == 1
    assert RequeueRun.objects.get(pk=run.pk).status == "queued"
    assert set(DLQEntry.objects.values_list("status", flat=True)) == {"pending"}

    # A new execution claims the run and the entries; the old one, still at work, commits
    # nothing of what it ran: every entry is run and counted once.
    RequeueRun.objects.filter(pk=run.pk).update(status="running", claim_token="new")
    fresh = RequeueRun.objects.get(pk=run.pk)
    entries.claim([e.pk for e in held], fresh)
    result = entries.reprocess(held, run, started_by="ops")
    assert (result.succeeded, result.failed, result.skipped) == (0, 0, 3)
    assert set(DLQEntry.objects.values_list("status", "attempts")) == {("requeued", 1)}


def test_a_regroup_run_whose_worker_died_is_queued_again(as_worker, make_job):
    run = RegroupRun.objects.create(
        job=make_job(), status="running", heartbeat_at=timezone.now(), created_by="ops"
    )
    RegroupRun.objects.filter(pk=run.pk).update(**_held_here())
    assert sweep.regroup.recover_stalled_runs() == 0
    liveness.mark_stopped(workers.current().boot_id)
    assert sweep.regroup.recover_stalled_runs() == 1
    assert RegroupRun.objects.get(pk=run.pk).status == "queued"


def test_instances_not_heard_from_for_a_day_are_purged(as_worker):
    _age(as_worker, 2 * 86400)
    assert liveness.purge_instances() == 1


def _held_here():
    return liveness.claim_fields(timezone.now() - timedelta(seconds=1))
