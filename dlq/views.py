"""The DLQ health page, /dlq/health/: every job's DLQ at a glance, coloured by status."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Left

from errors.models import ErrorGroup
from errors.views import page

from . import health
from .models import DLQEntry, Job

TOP_ERRORS = 3
STATUS_CLASSES = {
    health.HEALTHY: "healthy",
    health.CAUTION: "caution",
    health.WARNING: "warning",
    health.CRITICAL: "critical",
}


@dataclass(frozen=True)
class JobRow:
    job: Job
    summary: health.DLQHealth
    status_class: str
    records_processed: int
    records_failed: int
    failure_rate_percent: float
    oldest_pending_at: datetime | None
    top_errors: list


@staff_member_required
def health_page(request):
    rows = job_rows()
    return page(
        request,
        "dlq/health.html",
        "DLQ health",
        rows=rows,
        at_risk=sum(row.status_class in ("warning", "critical") for row in rows),
    )


def job_rows():
    """One row per job: the counters (never a COUNT over the DLQ) and a few index reads.

    The oldest pending entry is a correlated subquery, one index probe per job
    inside the single jobs query; the top errors are one (job_name, last_seen)
    index read per job.
    """
    oldest = DLQEntry.oldest_pending_of(OuterRef("pk"))
    jobs = (
        Job.objects.select_related("counters")
        .defer("config")
        .annotate(oldest_pending_at=Subquery(oldest))
        .order_by("name")
    )
    return [_row(job) for job in jobs]


def _row(job):
    counters = job.counters_or_zeros()
    summary = health.job_health(job, counters)
    processed, failed = counters.records_processed, counters.records_failed
    return JobRow(
        job=job,
        summary=summary,
        status_class=STATUS_CLASSES[summary.status],
        records_processed=processed,
        records_failed=failed,
        failure_rate_percent=counters.failure_rate_percent,
        oldest_pending_at=job.oldest_pending_at,
        top_errors=list(
            ErrorGroup.objects.filter(job_name=job.name)
            .only("id", "error_type", "count", "last_seen", "status")
            .annotate(template_head=Left("template", 200))
            .order_by("-last_seen")[:TOP_ERRORS]
        ),
    )
