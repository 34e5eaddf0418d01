"""A paused job on a real worker: its batches wait while the worker runs, and resume sends them
oldest first at the rate the operator chose, each processed once."""

from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from dlq import dispatch, pause
from dlq.actors import Actor
from dlq.ingest import submit_batch
from dlq.models import Batch, Job, JobCounters
from tests.metrics.scraping import parse, velo_samples

from .conftest import FINAL
from .harness import Worker, wait_for

pytestmark = pytest.mark.worker
OPS = Actor("ops", "admin")
RATE = 2.0  # batches a second
GOOD, BAD = {"symbol": "ACME"}, {"price": 1}


@pytest.fixture
def one_slot_worker(transactional_db, tmp_path):
    """One pool slot: batches run in the order they are sent."""
    started = Worker(tmp_path, name="one-slot", concurrency=1, VELO_BATCH_LEASE_SECONDS=3).start()
    yield started
    started.stop()
    print(f"--- worker log (tail)\n{started.log()[-4000:]}")


def paused_gauge(url):
    samples = velo_samples(parse(requests.get(f"{url}/metrics", timeout=10).text))
    return samples[("velo_job_paused", (("job_name", "orders"),))]


def ticks(worker):
    return worker.log().count("Task dlq.dispatch_due_batches[")


def test_a_paused_jobs_batches_wait_then_resume_sends_them_oldest_first_at_its_rate(
    one_slot_worker, api
):
    job = Job.objects.create(
        name="orders",
        processor="json_schema",
        failure_strategy="send_to_dlq",
        config={"schema": {"type": "object", "required": ["symbol"]}},
    )
    pause.pause(job, OPS)
    # Taken while paused, by the API (202) and by Python alike.
    ids = [api.submit("orders", [GOOD, BAD])["batch_id"] for _ in range(3)]
    ids += [submit_batch(Job.objects.get(pk=job.pk), [GOOD, BAD])[0].pk for _ in range(3)]
    # A message for one of them already at the broker: the worker takes it, does nothing.
    dispatch.send([ids[0]])
    wait_for(
        lambda: f"batch {ids[0]}: its job is paused" in one_slot_worker.log(),
        what="the worker to find the batch's job paused",
    )
    seen = ticks(one_slot_worker)
    wait_for(lambda: ticks(one_slot_worker) >= seen + 4, what="four more beat ticks")
    assert set(Batch.objects.values_list("status", "attempts", "dispatched_at")) == {
        ("queued", 0, None)
    }
    assert paused_gauge(api.url) == 1

    resumed_at = timezone.now()
    pause.resume(Job.objects.get(pk=job.pk), OPS, rate=RATE)
    assert paused_gauge(api.url) == 0
    for batch_id in ids:
        assert api.wait_until_final(batch_id)["status"] == "partial"
    batches = list(Batch.objects.order_by("started_at"))
    # Oldest first, and batch n no sooner than n / RATE seconds after the resume. A tick
    # that runs late sends two at once, and the embedded broker (kombu's filesystem
    # transport) orders messages published in the same millisecond by a random name: there
    # a batch may swap places with its neighbour sent with it; Redis keeps them in order.
    order = [b.pk for b in batches]
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert order == sorted(ids)
    else:
        assert all(abs(order.index(pk) - n) <= 1 for n, pk in enumerate(sorted(ids))), order
    for n, batch in enumerate(batches):
        assert batch.started_at >= resumed_at + timedelta(seconds=n / RATE), n
        assert (batch.attempts, batch.status) == (1, "partial")
    c = JobCounters.objects.get(job=job)
    assert (c.records_processed, c.records_failed, c.dlq_added, c.batches_partial) == (12, 6, 6, 6)
    assert not Batch.objects.exclude(status__in=FINAL).exists()
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, release_started_at__isnull=True).exists(),
        what="the release to end once nothing waits",
    )
    # Sent as they come again.
    assert api.wait_until_final(api.submit("orders", [GOOD])["batch_id"])["status"] == "succeeded"
