"""What a scraper must see after the workload (tests.metrics.workload), and the contract's
families: worked out by hand from the workload, never read back from the database."""

import math
from datetime import timedelta

from dlq.models import BatchDurationBucket

from .workload import (
    ALERT_MESSAGE,
    DEPLOYMENT,
    ID_MESSAGE,
    PRICE_MESSAGE,
    QTY_MESSAGE,
    SYMBOL_MESSAGE,
    T0,
)

BOUNDS = (*BatchDurationBucket.BOUNDS, math.inf)


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
        "recovered": "velo_batches_recovered_total",
        "replays": "velo_idempotent_replays_total",
        "timeouts": "velo_record_timeouts_total",
        "paused": "velo_job_paused",
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
        "recovered": 0,
        "replays": 0,
        "timeouts": 0,
        "paused": 0,
    }
    samples = {}
    # 1,000 attempted, 20 failed, all kept (unbounded); one discarded; one batch queued.
    samples.update(
        job_samples(
            "trades",
            [0.0, 0.0],
            0.0,
            **{**zero, "in_flight": 1, "discarded": 1, "recovered": 1, "replays": 1},
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
        # json_schema names the field and the rule, never the value.
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
    "velo_batches_recovered": ("counter", JOB),
    "velo_idempotent_replays": ("counter", JOB),
    "velo_job_paused": ("gauge", JOB),
    "velo_active_jobs": ("gauge", ()),
    "velo_deployment_info": ("gauge", ("node_id", "node_name", "region", "version")),
    "velo_record_timeouts": ("counter", JOB),
}
