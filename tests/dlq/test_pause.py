"""Pausing a job: batches are kept and not processed; resume sends them oldest first at a pace."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from dlq import pause, sweep
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, Job, OperatorAction
from tests.conftest import GOOD

pytestmark = pytest.mark.django_db
OPS = Actor("ops", "admin")


def fresh(job):
    return Job.objects.get(pk=job.pk)


def sent():
    """The ids of the batches with a message on its way, in id order."""
    return list(
        Batch.objects.filter(dispatched_at__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def test_a_paused_job_keeps_its_submissions_unsent_and_no_worker_claims_them(make_job):
    job = make_job()
    assert pause.pause(job, OPS)
    batch, created = submit_batch(fresh(job), [GOOD])
    assert created and batch.status == "queued" and batch.dispatched_at is None
    assert sweep.due_batch_ids(timezone.now()) == []
    assert process_batch(batch.pk) is None  # a message that reached a worker anyway
    batch.refresh_from_db()
    assert (batch.status, batch.attempts, batch.dispatched_at) == ("queued", 0, None)


def test_a_message_already_at_the_broker_leaves_its_batch_queued_and_sendable(make_job):
    job = make_job()
    batch, _ = submit_batch(job, [GOOD])  # sent: its message is on its way
    assert sent() == [batch.pk]
    pause.pause(job, OPS)
    assert process_batch(batch.pk) is None
    assert sent() == []  # the message is spent: the batch waits for the resume to send it
    pause.resume(fresh(job), OPS)
    assert pause.release_due(timezone.now(), sweep._not_on_its_way(timezone.now()), 100) == 1
    assert process_batch(batch.pk) == "succeeded"


def test_retries_due_during_a_pause_wait_too(make_job):
    job = make_job()
    batch, _ = submit_batch(job, [GOOD])
    now = timezone.now()
    Batch.objects.filter(pk=batch.pk).update(
        status="retrying", attempts=1, dispatched_at=None, next_attempt_at=now
    )
    pause.pause(job, OPS)
    assert sweep.due_batch_ids(now) == []
    assert process_batch(batch.pk) is None
    assert Batch.objects.get(pk=batch.pk).status == "retrying"


def test_resume_sends_what_waited_oldest_first_at_its_rate_through_the_tick(make_job):
    job = make_job()
    other = make_job("other")
    pause.pause(job, OPS)
    waiting = [submit_batch(fresh(job), [GOOD])[0].pk for _ in range(6)]
    pause.resume(fresh(job), OPS, rate=2)
    began = fresh(job).release_started_at
    stale = sweep._not_on_its_way(timezone.now())  # what was sent from now on is on its way
    # Batch n is due n / rate seconds after the resume: at once the first; at 1 s, two more.
    assert pause.release_due(began, stale, 100) == 1
    assert sent() == waiting[:1]
    assert pause.release_due(began + timedelta(seconds=1), stale, 100) == 2
    assert sent() == waiting[:3]
    # A new submission waits behind the release, not beside it.
    late = submit_batch(fresh(job), [GOOD])[0].pk
    unpaused = submit_batch(other, [GOOD])[0].pk  # another job's is sent at once
    assert set(sent()) == {*waiting[:3], unpaused}
    assert pause.release_due(began + timedelta(seconds=1.4), stale, 100) == 0
    assert pause.release_due(began + timedelta(seconds=1.5), stale, 100) == 1
    assert sent()[:4] == waiting[:4]
    assert pause.release_due(began + timedelta(seconds=3), stale, 100) == 3
    assert set(sent()) == {*waiting, late, unpaused}
    # Nothing waits: the release ends, and the job's batches are sent as they come again.
    assert pause.release_due(began + timedelta(seconds=10), stale, 100) == 0
    assert fresh(job).release_started_at is None
    assert submit_batch(fresh(job), [GOOD])[0].dispatched_at is not None


def test_a_release_behind_its_schedule_does_not_burst(make_job):
    """The dispatcher was away for a minute: it goes on at its rate, not 60 s worth at once."""
    job = make_job()
    pause.pause(job, OPS)
    for _ in range(20):
        submit_batch(fresh(job), [GOOD])
    pause.resume(fresh(job), OPS, rate=1)
    began = fresh(job).release_started_at
    stale = sweep._not_on_its_way(timezone.now())  # what was sent from now on is on its way
    assert pause.release_due(began + timedelta(seconds=60), stale, 100) == 2  # CREDIT_SECONDS
    assert pause.release_due(began + timedelta(seconds=61), stale, 100) == 1


def test_resume_without_a_rate_sends_everything_on_the_next_tick(make_job):
    job = make_job()
    pause.pause(job, OPS)
    waiting = [submit_batch(fresh(job), [GOOD])[0].pk for _ in range(5)]
    pause.resume(fresh(job), OPS)
    assert sweep.tick() == 5
    assert sent() == waiting
    assert [process_batch(pk) for pk in waiting] == ["succeeded"] * 5


def test_pause_and_resume_are_audited_and_change_only_what_they_should(make_job):
    job = make_job()
    assert pause.pause(job, OPS) and not pause.pause(fresh(job), OPS)
    submit_batch(fresh(job), [GOOD])
    assert pause.resume(fresh(job), OPS, rate=0.5) and not pause.resume(fresh(job), OPS)
    actions = list(OperatorAction.objects.order_by("pk").values_list("action", "username", "count"))
    assert actions == [("pause", "ops", 0), ("resume", "ops", 1)]
    assert OperatorAction.objects.get(action="resume").details == {"rate": 0.5, "waiting": 1}
    with pytest.raises(pause.InvalidRate):
        pause.resume(fresh(job), OPS, rate=0)


def paused_gauge(client):
    from tests.metrics.scraping import parse, velo_samples

    samples = velo_samples(parse(client.get("/metrics").content.decode()))
    return {
        dict(labels)["job_name"]: value
        for (name, labels), value in samples.items()
        if name == "velo_job_paused"
    }


def test_metrics_and_the_health_page_show_a_paused_job(make_job, client, login):
    job = make_job("orders")
    make_job("payments")
    assert paused_gauge(client) == {"orders": 0, "payments": 0}
    pause.pause(job, OPS)
    submit_batch(fresh(job), [GOOD])
    submit_batch(fresh(job), [GOOD])
    assert paused_gauge(client) == {"orders": 1, "payments": 0}
    staff = login("dlq.view_job")
    page = staff.get("/dlq/health/").content.decode()
    assert 'id="paused-count">1 paused' in page
    row = page[page.index('data-job="orders"') :].split("</tr>")[0]
    assert "PAUSED" in row and "2 batches waiting" in row
    assert "PAUSED" not in page[page.index('data-job="payments"') :].split("</tr>")[0]
    pause.resume(fresh(job), OPS, rate=1)
    assert paused_gauge(client) == {"orders": 0, "payments": 0}
    row = staff.get("/dlq/health/").content.decode().split('data-job="orders"')[1]
    assert "RESUMING" in row.split("</tr>")[0] and "2 batches left to send at 1/s" in row


def test_the_submit_command_stores_a_paused_jobs_batches_unsent(make_job, tmp_path):
    from django.core.management import call_command

    job = make_job()
    pause.pause(job, OPS)
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join(json.dumps(GOOD) for _ in range(5)) + "\n")
    call_command("submit_batch", "orders", str(records), "--batch-size", "2")
    assert list(
        Batch.objects.order_by("pk").values_list("record_count", "status", "dispatched_at")
    ) == [
        (2, "queued", None),
        (2, "queued", None),
        (1, "queued", None),
    ]
