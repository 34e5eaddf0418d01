"""Retention: delete what is past its keeping time, in id chunks, never touching the counters.

Three kinds go: DLQ entries that are resolved or discarded and older than
their job's `dlq_retention_days` (counted from resolved_at), error
occurrences older than VELO_OCCURRENCE_RETENTION_DAYS, and rollups and
volumes older than VELO_ROLLUP_RETENTION_DAYS. Each chunk is read as ids only and
deleted in its own short transaction (as django-celery-results'
delete_expired does), so a purge of millions of rows holds no long lock and
loads no payload. Counters are stored apart (JobCounters, ErrorGroup.count,
ErrorTotal) and are never lowered: /metrics counters must not go backwards.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from errors.models import ErrorOccurrence, ErrorRollup, ErrorVolume, Grain

from .models import DLQEntry, Job

log = logging.getLogger(__name__)

CHUNK = 5000
PURGED_STATUSES = (DLQEntry.Status.RESOLVED, DLQEntry.Status.DISCARDED)


def purge_expired(now=None, chunk=CHUNK):
    """Purge every kind; return {"dlq_entries": n, "occurrences": n, "rollups": n}."""
    now = now or timezone.now()
    counts = {
        "dlq_entries": purge_dlq_entries(now, chunk),
        "occurrences": purge_occurrences(now, chunk),
        "rollups": purge_rollups(now, chunk),
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
        total += _in_chunks(expired, chunk)
    return total


def purge_occurrences(now, chunk=CHUNK):
    cutoff = now - timedelta(days=settings.VELO_OCCURRENCE_RETENTION_DAYS)
    return _in_chunks(ErrorOccurrence.objects.filter(occurred_at__lt=cutoff), chunk)


def purge_rollups(now, chunk=CHUNK):
    """Rollups and volumes whose bucket ended before the cutoff (a week's ends 7 days in)."""
    cutoff = now - timedelta(days=settings.VELO_ROLLUP_RETENTION_DAYS)
    ended = Q(grain=Grain.WEEK, bucket__lt=cutoff - timedelta(days=7)) | (
        ~Q(grain=Grain.WEEK) & Q(bucket__lt=cutoff)
    )
    return _in_chunks(ErrorRollup.objects.filter(ended), chunk) + _in_chunks(
        ErrorVolume.objects.filter(bucket__lt=cutoff), chunk
    )


def _in_chunks(expired, chunk):
    """Delete the rows of `expired` a chunk of ids at a time, each chunk in its own transaction.

    The delete repeats the filter, so a row that changed since its id was read
    stays. `only("pk")` keeps the ORM's cascade from loading whole rows (a DLQ
    entry's attempt history goes with it, deleted by entry id).
    """
    label = expired.model._meta.label
    ids = expired.order_by("pk").values_list("pk", flat=True)
    total, last = 0, 0
    while True:
        chunk_ids = list(ids.filter(pk__gt=last)[:chunk])
        if not chunk_ids:
            return total
        with transaction.atomic():
            _, per_model = expired.filter(pk__in=chunk_ids).only("pk").delete()
        total += per_model.get(label, 0)
        last = chunk_ids[-1]
