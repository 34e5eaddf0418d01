"""Retention of the error history: occurrences and rollups past their keeping time go.

Occurrences older than VELO_OCCURRENCE_RETENTION_DAYS, rollups and volumes
older than VELO_ROLLUP_RETENTION_DAYS, and minute rows (which only the last
hour's and six hours' charts read) older than VELO_MINUTE_ROLLUP_RETENTION_HOURS
are deleted in id chunks, each in its
own short transaction. The counts a group or a job shows are stored apart
(ErrorGroup.count, ErrorTotal) and are never lowered: /metrics counters must
not go backwards.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from common.chunks import delete_in_chunks

from .models import ErrorOccurrence, ErrorRollup, ErrorVolume, Grain

CHUNK = 5000


def purge_occurrences(now, chunk=CHUNK):
    """Occurrences past retention; return the failures they stood for (their counts)."""
    cutoff = now - timedelta(days=settings.VELO_OCCURRENCE_RETENTION_DAYS)
    expired = ErrorOccurrence.objects.filter(occurred_at__lt=cutoff)
    return delete_in_chunks(expired, chunk, weight="count")


def minute_cutoff(now):
    """Minute rows from before this are purged."""
    return now - timedelta(hours=settings.VELO_MINUTE_ROLLUP_RETENTION_HOURS)


def purge_rollups(now, chunk=CHUNK):
    """Rollups and volumes whose bucket ended before the cutoff (a week's ends 7 days in),
    and minute rows before their much nearer cutoff."""
    cutoff = now - timedelta(days=settings.VELO_ROLLUP_RETENTION_DAYS)
    minutes = Q(grain=Grain.MINUTE, bucket__lt=minute_cutoff(now))
    ended = (
        Q(grain=Grain.WEEK, bucket__lt=cutoff - timedelta(days=7))
        | (~Q(grain=Grain.WEEK) & Q(bucket__lt=cutoff))
        | minutes
    )
    return delete_in_chunks(ErrorRollup.objects.filter(ended), chunk) + delete_in_chunks(
        ErrorVolume.objects.filter(Q(bucket__lt=cutoff) | minutes), chunk
    )
