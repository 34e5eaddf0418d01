"""Velo's own Prometheus families (velo_*), read from the database at scrape time.

Every value comes from the per-job counters and small aggregates, so every web
process reports the same numbers, they survive restarts, and a scrape costs
O(jobs + 10), never O(DLQ size) or O(occurrences): six queries whatever the
number of jobs, none of them a COUNT or GROUP BY over DLQ entries or
occurrences. `describe()` lets the collector be registered without touching
the database.
"""

import math

from django.db.models import Count, OuterRef, Subquery, Sum
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from errors.context import current as current_context
from errors.models import ErrorGroup, ErrorTotal

from . import health
from .models import Batch, BatchDurationBucket, DLQEntry, Job

JOB = ["job_name"]
RECENT_ERRORS = 10
MESSAGE_LABEL_CHARS = 200
BUCKET_BOUNDS = (*BatchDurationBucket.BOUNDS, math.inf)

# name -> (type, help, labels): the contract's table of velo_* metrics. Counters are named without
# their _total suffix, which the exposition adds.
FAMILIES = {
    "velo_records_processed": ("counter", "Records attempted (every attempt).", JOB),
    "velo_records_failed": ("counter", "Failed record attempts.", JOB),
    "velo_failure_rate_percent": ("gauge", "Failed / processed x 100.", JOB),
    "velo_batches": ("counter", "Finished batches by final status.", [*JOB, "status"]),
    "velo_batch_retries": ("counter", "Batch retries scheduled.", JOB),
    "velo_batch_duration_seconds": ("histogram", "Batch processing time.", JOB),
    "velo_batches_in_flight": ("gauge", "Queued, running and retrying batches.", JOB),
    "velo_dlq_entries_added": ("counter", "DLQ entries stored.", JOB),
    "velo_dlq_entries_rejected": ("counter", "DLQ entries refused at capacity.", JOB),
    "velo_dlq_entries_requeued": ("counter", "DLQ entries requeued.", JOB),
    "velo_dlq_entries_resolved": ("counter", "Requeued entries that then succeeded.", JOB),
    "velo_dlq_entries_discarded": ("counter", "DLQ entries discarded by an operator.", JOB),
    "velo_dlq_size": ("gauge", "Pending DLQ entries.", JOB),
    "velo_dlq_max_size": ("gauge", "DLQ capacity (absent when unbounded).", JOB),
    "velo_dlq_capacity_percent": ("gauge", "DLQ size / capacity x 100.", JOB),
    "velo_dlq_at_capacity": ("gauge", "1 when the DLQ is at capacity.", JOB),
    "velo_dlq_capacity_exceeded": ("counter", "Times an entry was refused at capacity.", JOB),
    "velo_dlq_health_status": (
        "gauge",
        "DLQ health: 0 HEALTHY, 1 CAUTION, 2 WARNING, 3 CRITICAL.",
        JOB,
    ),
    "velo_dlq_oldest_entry_timestamp_seconds": (
        "gauge",
        "Creation time of the oldest pending entry (absent when empty).",
        JOB,
    ),
    "velo_dlq_last_entry_timestamp_seconds": ("gauge", "Time of the last entry added.", JOB),
    "velo_error_messages": ("counter", "Error occurrences recorded.", []),
    "velo_unique_error_types": ("gauge", "Error groups.", []),
    "velo_buffered_error_messages": (
        "gauge",
        "Groups in the recent-errors buffer (the last 10 seen).",
        [],
    ),
    "velo_error_message": (
        "gauge",
        "Count of each of the 10 most recently seen error groups.",
        [*JOB, "message"],
    ),
    "velo_batches_recovered": (
        "counter",
        "Batch attempts handed out again after a worker died or a lease ran out.",
        JOB,
    ),
    "velo_idempotent_replays": (
        "counter",
        "Submissions answered with an earlier batch of the same Idempotency-Key.",
        JOB,
    ),
    "velo_job_paused": ("gauge", "1 while the job is paused (its batches wait).", JOB),
    "velo_active_jobs": ("gauge", "Enabled jobs.", []),
    "velo_deployment_info": (
        "gauge",
        "This node's deployment context.",
        ["node_id", "node_name", "region", "version"],
    ),
}
_KINDS = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
    "histogram": HistogramMetricFamily,
}


def _families():
    return {
        name: _KINDS[kind](name, help_text, labels=labels)
        for name, (kind, help_text, labels) in FAMILIES.items()
    }


class VeloCollector:
    """The velo_* families; registered in the /metrics view's own registry."""

    def describe(self):
        """The families without their samples: registering reads no database."""
        return [*_families().values(), record_timeouts([])]

    def collect(self):
        f = _families()
        # The oldest pending entry of each job comes with the jobs, one index
        # probe each: one query, not one per job.
        oldest_pending = DLQEntry.oldest_pending_of(OuterRef("pk"))
        jobs = list(
            Job.objects.select_related("counters")
            .annotate(oldest_pending=Subquery(oldest_pending))
            .order_by("name")
        )
        in_flight = dict(
            Batch.objects.filter(status__in=Batch.IN_FLIGHT)
            .values_list("job_id")
            .annotate(n=Count("pk"))
            .values_list("job_id", "n")
        )
        buckets = {}
        for job_id, le, count in BatchDurationBucket.objects.values_list("job_id", "le", "count"):
            # A row whose bound is no longer one of BOUNDS counts in the next
            # bound up, so _count always equals the batches observed.
            bound = next(b for b in BUCKET_BOUNDS if le <= b)
            job_buckets = buckets.setdefault(job_id, {})
            job_buckets[bound] = job_buckets.get(bound, 0) + count
        for job in jobs:
            self._job(f, job, in_flight.get(job.pk, 0), buckets.get(job.pk, {}))
        self._errors(f)
        f["velo_active_jobs"].add_metric([], sum(job.enabled for job in jobs))
        context = current_context()
        f["velo_deployment_info"].add_metric(
            [context.node_id, context.node_name, context.region, context.version], 1
        )
        yield from f.values()
        yield record_timeouts(jobs)

    def _job(self, f, job, in_flight, buckets):
        c = job.counters_or_zeros()
        label = [job.name]
        for name, value in (
            ("velo_records_processed", c.records_processed),
            ("velo_records_failed", c.records_failed),
            ("velo_batch_retries", c.batch_retries),
            ("velo_dlq_entries_added", c.dlq_added),
            ("velo_dlq_entries_rejected", c.dlq_rejected),
            ("velo_dlq_entries_requeued", c.dlq_requeued),
            ("velo_dlq_entries_resolved", c.dlq_resolved),
            ("velo_dlq_entries_discarded", c.dlq_discarded),
            # Every refusal at capacity is one rejected entry (a backpressure
            # hold refuses nothing: the entry waits with its batch).
            ("velo_dlq_capacity_exceeded", c.dlq_rejected),
            ("velo_dlq_size", c.dlq_pending),
            ("velo_batches_in_flight", in_flight),
        ):
            f[name].add_metric(label, value)
        f["velo_failure_rate_percent"].add_metric(label, c.failure_rate_percent)
        f["velo_job_paused"].add_metric(label, int(job.paused_at is not None))
        _recoveries(f, label, c)
        for status in (Batch.Status.SUCCEEDED, Batch.Status.PARTIAL, Batch.Status.FAILED):
            f["velo_batches"].add_metric([job.name, status.value], getattr(c, f"batches_{status}"))
        summary = health.job_health(job, c)
        if job.dlq_max_size is not None:
            f["velo_dlq_max_size"].add_metric(label, job.dlq_max_size)
        f["velo_dlq_capacity_percent"].add_metric(label, summary.capacity_usage_percent)
        f["velo_dlq_at_capacity"].add_metric(label, int(summary.is_at_capacity))
        f["velo_dlq_health_status"].add_metric(label, health.LEVELS[summary.status])
        if job.oldest_pending is not None:
            f["velo_dlq_oldest_entry_timestamp_seconds"].add_metric(
                label, job.oldest_pending.timestamp()
            )
        last = c.last_entry_at.timestamp() if c.last_entry_at else 0.0
        f["velo_dlq_last_entry_timestamp_seconds"].add_metric(label, last)
        cumulative, running = [], 0
        for le in BUCKET_BOUNDS:
            running += buckets.get(le, 0)
            cumulative.append(("+Inf" if le == math.inf else repr(le), running))
        f["velo_batch_duration_seconds"].add_metric(
            label, buckets=cumulative, sum_value=c.batch_duration_sum
        )

    def _errors(self, f):
        total = ErrorTotal.objects.aggregate(n=Sum("occurrences"))["n"] or 0
        f["velo_error_messages"].add_metric([], total)
        f["velo_unique_error_types"].add_metric([], ErrorGroup.objects.count())
        recent = list(
            ErrorGroup.objects.order_by("-last_seen", "-pk").values_list(
                "job_name", "template", "count"
            )[:RECENT_ERRORS]
        )
        f["velo_buffered_error_messages"].add_metric([], len(recent))
        # Two templates alike in their first 200 characters share one series.
        series = {}
        for job_name, template, count in recent:
            labels = (job_name, template[:MESSAGE_LABEL_CHARS])
            series[labels] = series.get(labels, 0) + count
        for labels, count in series.items():
            f["velo_error_message"].add_metric(list(labels), count)


def _recoveries(f, label, c):
    """Liveness: attempts handed out again (dlq.engine.lease.recover_stalled) and
    submissions answered from an Idempotency-Key (dlq.ingest.submit)."""
    f["velo_batches_recovered"].add_metric(label, c.batches_recovered)
    f["velo_idempotent_replays"].add_metric(label, c.idempotent_replays)


def record_timeouts(jobs):
    """velo_record_timeouts_total{job_name}: record attempts that failed with RecordTimeout
    (soft limit, hard limit or a late return), from the job's stored counter."""
    family = CounterMetricFamily(
        "velo_record_timeouts",
        "Record attempts failed for running past record_timeout.",
        labels=JOB,
    )
    for job in jobs:
        family.add_metric([job.name], job.counters_or_zeros().record_timeouts)
    return family
