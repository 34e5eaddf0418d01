"""A known workload built with the real engine, on a frozen clock.

django.utils.timezone.now is what every layer asks, so with it frozen the
timestamps and batch durations of the workload are known to the second."""

from datetime import UTC, datetime, timedelta

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.engine.lease import claim_batch, recover_stalled
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQEntry, Job
from dlq.processors import processor
from dlq.requeue import RequeueOptions, RequeueScope
from errors.context import DeploymentContext

OPS_SHELL = Actor("ops", "shell")


T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


DEPLOYMENT = DeploymentContext(
    node_id="node-7", node_name="velo-web", region="eu-west-1", version="9.9.9"
)


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


QTY_MESSAGE = "Field 'qty': not of type 'integer'"


ID_MESSAGE = "Field 'id': missing (required)"


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
    # Its client sends it again with the same Idempotency-Key: answered from the first.
    # A worker claims it and dies; at t=400 its lease has run out: it is handed out again.
    clock.at(90)
    late, _ = submit_batch(trades, [{"symbol": "Z", "price": 1}], idempotency_key="z-1")
    assert submit_batch(trades, [{"symbol": "Z", "price": 1}], idempotency_key="z-1") == (
        late,
        False,
    )
    assert claim_batch(late.pk) is not None
    clock.at(400)
    assert recover_stalled() == 1
