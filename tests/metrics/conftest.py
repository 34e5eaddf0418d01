"""A known workload built with the real engine, and what a scraper must see after it.

The clock is frozen (django.utils.timezone.now is what every layer asks), so
timestamps and batch durations are known to the second; the expected values
below are worked out by hand from the workload, never read back from the database.
"""

import math
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, BatchDurationBucket, DLQEntry, Job
from dlq.processors import processor
from dlq.requeue import RequeueOptions, RequeueScope
from errors.context import DeploymentContext

OPS_SHELL = Actor("ops", "shell")

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
DEPLOYMENT = DeploymentContext(
    node_id="node-7", node_name="velo-web", region="eu-west-1", version="9.9.9"
)
BOUNDS = (*BatchDurationBucket.BOUNDS, math.inf)


class Clock:
    """A settable stand-in for timezone.now."""

    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def at(self, seconds):
        self.now = T0 + timedelta(seconds=seconds)


CLOCK = Clock()


@processor("metrics.tick", transactional=False)
def tick(record, ctx):
    """Takes config["seconds"] of (frozen) time per record; fails with record["error"]."""
    CLOCK.now += timedelta(seconds=float(ctx.config.get("seconds", 0)))
    if "error" in record:
        raise ValueError(record["error"])


@pytest.fixture
def clock(monkeypatch):
    CLOCK.at(0)
    monkeypatch.setattr(timezone, "now", CLOCK)
    return CLOCK


@pytest.fixture
def deployment(settings):
    settings.VELO_DEPLOYMENT = DEPLOYMENT
    return DEPLOYMENT


def run_once(batch):
    """One attempt of the real engine, due now (a retry's wait skipped)."""
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=None)
    process_batch(batch.pk)
    batch.refresh_from_db()
    return batch


def trades_records(n, bad_every):
    return [
        {"price": i} if i % bad_every == 7 else {"symbol": f"S{i}", "price": i} for i in range(n)
    ]


ORDERS_SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "integer"}, "qty": {"type": "integer"}},
}
QTY_MESSAGE = "Field 'qty': 'many' is not of type 'integer'"
ID_MESSAGE = "Field 'id': 'id' is a required property"
SYMBOL_MESSAGE = "Missing required column 'symbol'"
PRICE_MESSAGE = "Missing required column 'price'"
ALERT_MESSAGE = "Upstream refused the record"


def build_workload(clock):
    """The workload the expected exposition below describes (see the comments per step)."""
    trades = Job.objects.create(
        name="trades",
        processor="demo.trades",
        failure_strategy="log_and_continue",
        dlq_max_size=None,
    )
    ledger = Job.objects.create(
        name="ledger",
        processor="demo.trades",
        failure_strategy="fail_batch",
        max_retries=1,
        dlq_max_size=6,
    )
    orders = Job.objects.create(
        name="orders",
        processor="json_schema",
        config={"schema": ORDERS_SCHEMA},
        failure_strategy="send_to_dlq",
        dlq_max_size=10,
    )
    alerts = Job.objects.create(
        name="alerts",
        processor="metrics.tick",
        config={"seconds": 2},
        failure_strategy="send_to_dlq",
        dlq_max_size=1,
        dlq_full_policy="reject",
    )
    Job.objects.create(name="idle", processor="demo.trades", enabled=False)

    # t=0 and t=10: 1,000 trades in two batches of 500, 10 without a symbol in each.
    clock.at(0)
    first, _ = submit_batch(trades, trades_records(500, 50))
    assert run_once(first).status == "partial"
    clock.at(10)
    second, _ = submit_batch(trades, trades_records(500, 50))
    assert run_once(second).status == "partial"

    # t=20: a fail_batch batch of 5 fails; t=45: its one retry fails too, so
    # all 5 records go to the DLQ; 25 s from first claim to the end.
    clock.at(20)
    ledger_batch, _ = submit_batch(
        ledger,
        [
            {"symbol": "A", "price": 1},
            {"symbol": "B", "price": 2},
            {"symbol": "C"},
            {"symbol": "D", "price": 4},
            {"symbol": "E", "price": 5},
        ],
    )
    assert run_once(ledger_batch).status == "retrying"
    clock.at(45)
    assert run_once(ledger_batch).status == "failed"

    # t=30: three orders, two refused by the schema.
    clock.at(30)
    orders_batch, _ = submit_batch(
        orders, [{"id": 1, "qty": 2}, {"id": 2, "qty": "many"}, {"qty": 3}]
    )
    assert run_once(orders_batch).status == "partial"

    # t=50: three alerts, 2 s each; two fail, the DLQ holds one: one rejected at t=56.
    clock.at(50)
    alerts_batch, _ = submit_batch(
        alerts, [{"n": 0}, {"error": ALERT_MESSAGE}, {"error": ALERT_MESSAGE}]
    )
    assert run_once(alerts_batch).status == "partial"

    # t=70: the schema is relaxed for qty; both orders entries are requeued:
    # the qty one succeeds, the id one fails again (a new occurrence at t=70).
    clock.at(70)
    orders.config = {
        "schema": {**ORDERS_SCHEMA, "properties": {"qty": {"type": ["integer", "string"]}}}
    }
    orders.save()
    entries = list(DLQEntry.objects.filter(job=orders).order_by("index"))
    run = requeue.run_here(
        RequeueScope.of_ids([e.pk for e in entries]), RequeueOptions(), OPS_SHELL
    )
    assert (run.succeeded, run.failed) == (1, 1)

    # t=80: an operator discards one trades entry of the first batch.
    clock.at(80)
    one = DLQEntry.objects.filter(job=trades, batch=first).order_by("index").first()
    assert triage.discard(DLQEntry.objects.filter(pk=one.pk), actor=OPS_SHELL) == 1

    # t=90: a trades batch is queued and not yet processed: in flight.
    clock.at(90)
    submit_batch(trades, [{"symbol": "Z", "price": 1}])


def ts(seconds):
    return (T0 + timedelta(seconds=seconds)).timestamp()


def histogram(job, observations, total):
    """Expected samples of velo_batch_duration_seconds for one job: cumulative, ending in +Inf."""
    samples = {}
    for le in BOUNDS:
        label = "+Inf" if le == math.inf else repr(le)
        samples[("velo_batch_duration_seconds_bucket", (("job_name", job), ("le", label)))] = sum(
            1 for seconds in observations if seconds <= le
        )
    samples[("velo_batch_duration_seconds_count", (("job_name", job),))] = len(observations)
    samples[("velo_batch_duration_seconds_sum", (("job_name", job),))] = total
    return samples


def per_job(job, **values):
    """The one-label families of a job, keyed as velo_samples() keys them."""
    names = {
        "processed": "velo_records_processed_total",
        "failed": "velo_records_failed_total",
        "rate": "velo_failure_rate_percent",
        "retries": "velo_batch_retries_total",
        "in_flight": "velo_batches_in_flight",
        "added": "velo_dlq_entries_added_total",
        "rejected": "velo_dlq_entries_rejected_total",
        "requeued": "velo_dlq_entries_requeued_total",
        "resolved": "velo_dlq_entries_resolved_total",
        "discarded": "velo_dlq_entries_discarded_total",
        "size": "velo_dlq_size",
        "max_size": "velo_dlq_max_size",
        "capacity": "velo_dlq_capacity_percent",
        "at_capacity": "velo_dlq_at_capacity",
        "exceeded": "velo_dlq_capacity_exceeded_total",
        "health": "velo_dlq_health_status",
        "oldest": "velo_dlq_oldest_entry_timestamp_seconds",
        "last": "velo_dlq_last_entry_timestamp_seconds",
    }
    label = (("job_name", job),)
    return {(names[key], label): value for key, value in values.items() if value is not None}


def job_samples(job, durations, duration_sum, **values):
    """All of a job's samples: a value of None means the sample must be absent."""
    batches = {k: v for k, v in values.items() if k.startswith("batches_")}
    samples = per_job(job, **{k: v for k, v in values.items() if k not in batches})
    for status in ("succeeded", "partial", "failed"):
        samples[("velo_batches_total", (("job_name", job), ("status", status)))] = batches.get(
            f"batches_{status}", 0
        )
    samples.update(histogram(job, durations, duration_sum))
    return samples


def expected_workload_samples():
    """Every velo_* sample after build_workload(), worked out by hand."""
    zero = {
        "retries": 0,
        "in_flight": 0,
        "rejected": 0,
        "requeued": 0,
        "resolved": 0,
        "discarded": 0,
        "exceeded": 0,
        "at_capacity": 0,
    }
    samples = {}
    # 1,000 attempted, 20 failed, all kept (unbounded); one discarded; one batch queued.
    samples.update(
        job_samples(
            "trades",
            [0.0, 0.0],
            0.0,
            **{**zero, "in_flight": 1, "discarded": 1},
            processed=1000,
            failed=20,
            rate=20 / 1000 * 100,
            batches_partial=2,
            added=20,
            size=19,
            max_size=None,
            capacity=0.0,
            health=0,
            oldest=ts(0),
            last=ts(10),
        )
    )
    # fail_batch, 5 records, 2 attempts: all records count as failed each time.
    samples.update(
        job_samples(
            "ledger",
            [25.0],
            25.0,
            **{**zero, "retries": 1},
            processed=10,
            failed=10,
            rate=10 / 10 * 100,
            batches_failed=1,
            added=5,
            size=5,
            max_size=6,
            capacity=5 / 6 * 100,
            health=1,  # CAUTION: 83 %
            oldest=ts(45),
            last=ts(45),
        )
    )
    # two entries requeued: one resolved, one back to pending (created at t=30).
    samples.update(
        job_samples(
            "orders",
            [0.0],
            0.0,
            **{**zero, "requeued": 2, "resolved": 1},
            processed=3,
            failed=2,
            rate=2 / 3 * 100,
            batches_partial=1,
            added=2,
            size=1,
            max_size=10,
            capacity=1 / 10 * 100,
            health=0,
            oldest=ts(30),
            last=ts(30),
        )
    )
    # a DLQ of one: one entry stored, one rejected, at t=56 (3 records × 2 s).
    samples.update(
        job_samples(
            "alerts",
            [6.0],
            6.0,
            **{**zero, "rejected": 1, "exceeded": 1, "at_capacity": 1},
            processed=3,
            failed=2,
            rate=2 / 3 * 100,
            batches_partial=1,
            added=1,
            size=1,
            max_size=1,
            capacity=1 / 1 * 100,
            health=3,
            oldest=ts(56),
            last=ts(56),
        )
    )
    # a disabled job that never ran: no oldest entry, default capacity.
    samples.update(
        job_samples(
            "idle",
            [],
            0.0,
            **zero,
            processed=0,
            failed=0,
            rate=0.0,
            added=0,
            size=0,
            max_size=100_000,
            capacity=0.0,
            health=0,
            oldest=None,
            last=0.0,
        )
    )
    # errors: occurrences 20 + 2 + (2 + 1 on requeue) + 2; five groups, all in the buffer.
    samples[("velo_error_messages_total", ())] = 27
    samples[("velo_unique_error_types", ())] = 5
    samples[("velo_buffered_error_messages", ())] = 5
    for job, message, count in [
        ("trades", SYMBOL_MESSAGE, 20),
        ("ledger", PRICE_MESSAGE, 2),
        ("orders", QTY_MESSAGE, 1),
        ("orders", ID_MESSAGE, 2),
        ("alerts", ALERT_MESSAGE, 2),
    ]:
        samples[("velo_error_message", (("job_name", job), ("message", message)))] = count
    samples[("velo_active_jobs", ())] = 4
    samples[
        (
            "velo_deployment_info",
            (
                ("node_id", DEPLOYMENT.node_id),
                ("node_name", DEPLOYMENT.node_name),
                ("region", DEPLOYMENT.region),
                ("version", DEPLOYMENT.version),
            ),
        )
    ] = 1
    return samples


# SPEC §8: family (as the parser names it: a counter without _total) -> (type, labels).
JOB = ("job_name",)
SPEC_FAMILIES = {
    "velo_records_processed": ("counter", JOB),
    "velo_records_failed": ("counter", JOB),
    "velo_failure_rate_percent": ("gauge", JOB),
    "velo_batches": ("counter", (*JOB, "status")),
    "velo_batch_retries": ("counter", JOB),
    "velo_batch_duration_seconds": ("histogram", JOB),
    "velo_batches_in_flight": ("gauge", JOB),
    "velo_dlq_entries_added": ("counter", JOB),
    "velo_dlq_entries_rejected": ("counter", JOB),
    "velo_dlq_entries_requeued": ("counter", JOB),
    "velo_dlq_entries_resolved": ("counter", JOB),
    "velo_dlq_entries_discarded": ("counter", JOB),
    "velo_dlq_size": ("gauge", JOB),
    "velo_dlq_max_size": ("gauge", JOB),
    "velo_dlq_capacity_percent": ("gauge", JOB),
    "velo_dlq_at_capacity": ("gauge", JOB),
    "velo_dlq_capacity_exceeded": ("counter", JOB),
    "velo_dlq_health_status": ("gauge", JOB),
    "velo_dlq_oldest_entry_timestamp_seconds": ("gauge", JOB),
    "velo_dlq_last_entry_timestamp_seconds": ("gauge", JOB),
    "velo_error_messages": ("counter", ()),
    "velo_unique_error_types": ("gauge", ()),
    "velo_buffered_error_messages": ("gauge", ()),
    "velo_error_message": ("gauge", (*JOB, "message")),
    "velo_active_jobs": ("gauge", ()),
    "velo_deployment_info": ("gauge", ("node_id", "node_name", "region", "version")),
}


def parse(text):
    """The families a scraper sees, by name."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def velo_samples(families):
    """{(sample name, sorted label pairs): value} for every velo_* sample."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for name, family in families.items()
        if name.startswith("velo_")
        for sample in family.samples
    }


@pytest.fixture
def scrape(client):
    """GET /metrics through Django; return (text, families)."""

    def get(**headers):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.content[:500]
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.content.decode()
        return text, parse(text)

    return get


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)",
)


def promtool_problems(text):
    """`promtool check metrics` on an exposition: its complaints, one a line."""
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 0 or lines, f"promtool failed silently ({result.returncode})"
    # No complaint is accepted, django-prometheus' names included: promtool
    # 2.42 (Debian 12) finds none in the whole exposition.
    return [line for line in lines if line.strip()]
