"""Retention: what is past its keeping time goes, in id chunks, never touching the counters.

DLQ entries that are resolved or discarded and older than their job's
`dlq_retention_days` (counted from resolved_at) go with their attempt history;
the error history's own retention (errors.retention) runs beside it. Each
chunk is read as ids only and deleted in its own short transaction (as
django-celery-results' delete_expired does), so a purge of millions of rows
holds no long lock and loads no payload. Counters are stored apart
(JobCounters) and are never lowered: /metrics counters must not go backwards.
"""

import logging
from datetime import timedelta

from django.utils import timezone

from common.chunks import delete_in_chunks
from errors import retention as error_retention

from . import activity, liveness
from .models import DLQEntry, Job

log = logging.getLogger(__name__)

CHUNK = 5000
PURGED_STATUSES = (DLQEntry.Status.RESOLVED, DLQEntry.Status.DISCARDED)


def purge_expired(now=None, chunk=CHUNK):
    """Purge every kind; return {"dlq_entries": n, "occurrences": n, "rollups": n, ...}."""
    now = now or timezone.now()
    counts = {
        "dlq_entries": purge_dlq_entries(now, chunk),
        "occurrences": error_retention.purge_occurrences(now, chunk),
        "rollups": error_retention.purge_rollups(now, chunk),
        "job_activity": activity.purge(now),
        "worker_instances": liveness.purge_instances(now),
    }
    log.info("purged expired rows: %s", counts)
    return counts


def purge_dlq_entries(now, chunk=CHUNK):
    """Resolved/discarded entries past their job's retention, with their attempt history."""
    total = 0
    for job_id, days in Job.objects.order_by("pk").values_list("pk", "dlq_retention_days"):
        expired = DLQEntry.objects.filter(
            job_id=job_id,
            status__in=PURGED_STATUSES,
            resolved_at__lt=now - timedelta(days=days),
        )
        total += delete_in_chunks(expired, chunk)
    return total
