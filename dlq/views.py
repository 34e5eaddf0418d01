"""The DLQ health page, /dlq/health/: every job's DLQ at a glance, worst first.

Rows are ordered by severity: the DLQ status (SPEC §5's four strings, about
capacity), then the last hour's failure rate, so a job failing most of its
records now comes before a quiet one even when both DLQs have room; a row
whose last hour passes its job's threshold says so beside the status, and a
paused job (dlq.pause) says so with the batches it holds. Top
errors are the groups with the most records waiting in the DLQ, then the
largest. The page reloads itself every REFRESH_SECONDS.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Left

from common.access import may_view, view_required
from errors.models import ErrorGroup
from errors.views import page

from . import activity, health, pause
from .models import DLQEntry, Job

TOP_ERRORS = 3
REFRESH_SECONDS = 30
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
    last_hour_processed: int
    last_hour_failed: int
    oldest_pending_at: datetime | None
    top_errors: list
    # Batches a paused (or resuming) job holds back; 0 for the others.
    held_batches: int = 0

    @property
    def last_hour_rate_percent(self):
        if not self.last_hour_processed:
            return 0.0
        return self.last_hour_failed / self.last_hour_processed * 100

    @property
    def failing_now(self):
        """The last hour's failure rate reached the job's warning threshold."""
        threshold = self.job.failure_rate_warning_percent
        return bool(self.last_hour_failed) and self.last_hour_rate_percent >= threshold

    @property
    def severity(self):
        """Sort key: the worst status first, then the highest failure rate of the last hour."""
        return (-health.LEVELS[self.summary.status], -self.last_hour_rate_percent, self.job.name)


@view_required(Job)
def health_page(request):
    # The top errors and the links to groups and entries, only for whoever may open them.
    may_view_groups = may_view(request, ErrorGroup)
    rows = job_rows(top_errors=may_view_groups)
    return page(
        request,
        "dlq/health.html",
        "DLQ health",
        rows=rows,
        at_risk=sum(row.status_class in ("warning", "critical") for row in rows),
        failing_now=sum(row.failing_now for row in rows),
        paused=sum(row.job.paused_at is not None for row in rows),
        refresh_seconds=REFRESH_SECONDS,
        may_view_groups=may_view_groups,
        may_view_entries=may_view(request, DLQEntry),
    )


def job_rows(*, top_errors=True):
    """One row per job, worst first: the counters (never a COUNT over the DLQ), the last
    hour's activity (at most 60 rows a job) and a few index reads.

    The oldest pending entry is a correlated subquery, one index probe per job
    inside the single jobs query; the top errors are one (job_id,
    dlq_pending, count) index read per job.
    """
    oldest = DLQEntry.oldest_pending_of(OuterRef("pk"))
    jobs = (
        Job.objects.select_related("counters")
        .defer("config")
        .annotate(oldest_pending_at=Subquery(oldest))
        .order_by("name")
    )
    jobs = list(jobs)
    recent = activity.last_hour()
    held = pause.waiting_batches(jobs)
    rows = (_row(job, recent.get(job.pk, (0, 0)), top_errors, held.get(job.pk, 0)) for job in jobs)
    return sorted(rows, key=lambda r: r.severity)


def _row(job, last_hour, top_errors, held_batches=0):
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
        last_hour_processed=last_hour[0],
        last_hour_failed=last_hour[1],
        oldest_pending_at=job.oldest_pending_at,
        top_errors=_top_errors(job) if top_errors else [],
        held_batches=held_batches,
    )


def _top_errors(job):
    return list(
        ErrorGroup.objects.filter(job_id=job.pk)
        .only("id", "error_type", "count", "dlq_pending", "status")
        .annotate(template_head=Left("template", 200))
        .order_by("-dlq_pending", "-count")[:TOP_ERRORS]
    )
