"""Sending work and the beat tick: nothing accepted waits on the broker, nothing due is missed."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from dlq import dispatch, sweep
from dlq.ingest import submit_batch
from dlq.models import Batch
from tests.conftest import GOOD

pytestmark = pytest.mark.django_db


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


def test_a_sent_batch_still_queued_while_nothing_waits_at_the_broker_is_sent_again_soon(
    make_job, settings
):
    """Its message was lost (a broker restarted empty, a worker SIGKILLed holding it
    prefetched): with the queue empty it is sent again after seconds, not five minutes."""
    settings.VELO_REDISPATCH_IDLE_SECONDS = 5
    settings.VELO_REDISPATCH_AFTER_SECONDS = 300
    batch = submit_batch(make_job(), [GOOD])[0]
    now = timezone.now()
    Batch.objects.filter(pk=batch.pk).update(dispatched_at=now - timedelta(seconds=10))
    assert sweep.due_batch_ids(now, stale_after=sweep.redispatch_after(0)) == [batch.pk]
    for waiting in (1, None):  # messages wait, or the broker cannot say: the long window
        assert sweep.due_batch_ids(now, stale_after=sweep.redispatch_after(waiting)) == []


def test_the_broker_counts_the_messages_waiting_in_a_queue():
    from celery import current_app

    queue = f"velo-count-{uuid.uuid4().hex}"
    assert dispatch.waiting_messages(queue) == 0  # a queue the broker never saw holds nothing
    current_app.send_task("dlq.no_such_task", args=(1,), queue=queue, retry=False)
    current_app.send_task("dlq.no_such_task", args=(2,), queue=queue, retry=False)
    try:
        assert dispatch.waiting_messages(queue) == 2
    finally:
        with current_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)


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
