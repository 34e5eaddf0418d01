"""Claims, leases and the dispatcher: the pieces that keep a batch from being lost or run twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dlq import dispatch, sweep
from dlq.claims import LostClaim, claim_batch, recover_stalled
from dlq.engine import process_batch
from dlq.models import Batch, DLQEntry, JobCounters
from dlq.submit import submit_batch
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(make_job):
    job = make_job(failure_strategy="send_to_dlq")
    return submit_batch(job, [GOOD, BAD])[0]


def test_only_one_claim_of_a_batch_succeeds(batch):
    first = claim_batch(batch.pk)
    assert first is not None
    assert claim_batch(batch.pk) is None
    assert Batch.objects.get(pk=batch.pk).status == "running"


def test_a_batch_that_is_not_due_cannot_be_claimed(batch):
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert claim_batch(batch.pk) is None
    assert process_batch(batch.pk) is None


def test_a_stale_claim_cannot_commit_after_its_batch_was_handed_out_again(batch):
    stale = claim_batch(batch.pk)
    Batch.objects.filter(pk=batch.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert recover_stalled() == 1
    fresh = claim_batch(batch.pk)
    assert fresh is not None
    with pytest.raises(LostClaim):
        stale.lock_batch()
    assert not stale.heartbeat()
    assert fresh.heartbeat()


def test_recovery_counts_the_lost_worker_and_keeps_the_retry_state(batch):
    Batch.objects.filter(pk=batch.pk).update(attempts=1)
    claim_batch(batch.pk)
    Batch.objects.filter(pk=batch.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    recover_stalled()
    batch.refresh_from_db()
    assert (batch.status, batch.lost_attempts, batch.claim_token) == ("retrying", 1, "")
    assert batch.dispatched_at is None


def test_a_live_lease_is_not_recovered(batch):
    claim_batch(batch.pk)
    assert recover_stalled() == 0


def test_a_batch_that_keeps_killing_workers_goes_to_the_dlq_whole(batch, settings):
    settings.VELO_MAX_LOST_ATTEMPTS = 3
    Batch.objects.filter(pk=batch.pk).update(lost_attempts=3)
    assert process_batch(batch.pk) == "failed"
    entries = DLQEntry.objects.order_by("index")
    assert [e.error_type for e in entries] == ["AttemptsLost", "AttemptsLost"]
    assert entries[0].error_message.startswith("3 attempts at this batch ended unrecorded")
    counters = JobCounters.objects.get(job=batch.job)
    assert (counters.records_failed, counters.dlq_added, counters.batches_failed) == (2, 2, 1)


def test_due_batches_are_those_queued_or_retrying_with_no_message_on_its_way(make_job):
    job = make_job()
    due = submit_batch(job, [GOOD])[0]
    sent_recently = submit_batch(job, [GOOD])[0]
    sent_long_ago = submit_batch(job, [GOOD])[0]
    later = submit_batch(job, [GOOD])[0]
    done = submit_batch(job, [GOOD])[0]
    now = timezone.now()
    Batch.objects.filter(pk=due.pk).update(dispatched_at=None)  # its send never happened
    Batch.objects.filter(pk=sent_recently.pk).update(dispatched_at=now)
    Batch.objects.filter(pk=sent_long_ago.pk).update(dispatched_at=now - timedelta(hours=1))
    Batch.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(minutes=5))
    Batch.objects.filter(pk=done.pk).update(status="succeeded")
    assert sorted(sweep.due_batch_ids(now)) == sorted([due.pk, sent_long_ago.pk])


def test_submitting_sends_the_batch_after_commit(make_job, django_capture_on_commit_callbacks):
    job = make_job()
    with django_capture_on_commit_callbacks() as callbacks:
        batch, created = submit_batch(job, [GOOD])
    assert created and len(callbacks) == 1
    assert Batch.objects.get(pk=batch.pk).status == "queued"


def test_a_batch_submitted_while_the_broker_is_down_is_left_to_the_next_tick(
    make_job, django_capture_on_commit_callbacks, monkeypatch
):
    job = make_job()
    backoff = dispatch.BrokerBackoff(60)
    backoff.trip()
    monkeypatch.setattr(dispatch, "broker_backoff", backoff)
    with django_capture_on_commit_callbacks(execute=True):
        batch, _ = submit_batch(job, [GOOD])
    # Stamped at insert, but never published: the stamp goes, so beat sends it at once.
    assert Batch.objects.get(pk=batch.pk).dispatched_at is None
    assert batch.pk in sweep.due_batch_ids(timezone.now())


def test_every_task_dispatch_publishes_by_name_is_registered_with_the_celery_app():
    from dlq import tasks  # noqa: F401  (what a worker's autodiscovery imports)
    from velo_site.celery import app

    assert set(dispatch.TASK_NAMES.values()) <= set(app.tasks)
    beat = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert beat <= set(app.tasks)


def test_publishing_sends_the_task_by_name_to_velos_queue(monkeypatch):
    from velo_site.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    dispatch.publish(dispatch.PROCESS_BATCH, 7)
    assert sent == [("dlq.process_batch", {"args": (7,), "retry": False})]
