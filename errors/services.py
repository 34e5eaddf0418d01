"""Writes of the error tracker: group failures by fingerprint and record occurrences.

Callers run these inside their own transaction, beside the work that failed,
so a retried task can never count an error twice.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Case, F, Value, When

from common import bulk

from .context import current as current_context
from .fingerprint import fingerprint, normalize
from .models import (
    ROLLUP_KEY,
    VOLUME_KEY,
    ErrorGroup,
    ErrorOccurrence,
    ErrorPlace,
    ErrorRollup,
    ErrorTotal,
    ErrorVolume,
    Grain,
)


@dataclass(frozen=True)
class Failure:
    """One failed record attempt, as the error tracker sees it."""

    error_type: str
    message: str


def _key(job_name, failure):
    template = normalize(failure.message)
    return fingerprint(job_name, failure.error_type, template), template


def group_failures(job_name, failures, *, now):
    """Count each failure into its group (creating or reopening it); return the groups in order."""
    keys = [_key(job_name, failure) for failure in failures]
    counts = Counter(fp for fp, _ in keys)
    latest = {
        fp: (failure, template) for (fp, template), failure in zip(keys, failures, strict=True)
    }
    groups = {}
    # Sorted, so two workers touching the same groups lock them in the same order.
    for fp in sorted(counts):
        failure, template = latest[fp]
        groups[fp] = _count_into_group(job_name, fp, template, failure, counts[fp], now)
    if failures:
        _add_to_total(job_name, len(failures))
    return [groups[fp] for fp, _ in keys]


def group_for(job_name, failure, *, now):
    """The group a failure belongs to, created if need be, without counting an occurrence."""
    fp, template = _key(job_name, failure)
    return _count_into_group(job_name, fp, template, failure, 0, now)


def _count_into_group(job_name, fp, template, failure, count, now):
    changes = {"count": F("count") + count}
    if count:
        changes.update(
            last_seen=now,
            last_message=failure.message,
            # A new occurrence of a resolved group reopens it: a regression.
            regressed_at=Case(
                When(status=ErrorGroup.Status.RESOLVED, then=Value(now)),
                default=F("regressed_at"),
            ),
            status=Case(
                When(status=ErrorGroup.Status.RESOLVED, then=Value(ErrorGroup.Status.UNRESOLVED)),
                default=F("status"),
            ),
        )
    initial = {
        "job_name": job_name,
        "error_type": failure.error_type,
        "template": template,
        "last_message": failure.message,
        "count": count,
        "first_seen": now,
        "last_seen": now,
    }
    bulk.upsert(ErrorGroup, {"fingerprint": fp}, changes, initial)
    return ErrorGroup.objects.get(fingerprint=fp)


def _add_to_total(job_name, count):
    bulk.merge_rows(
        ErrorTotal,
        [{"job_name": job_name, "occurrences": count}],
        key=["job_name"],
        add=["occurrences"],
    )


def save_occurrences(job_name, rows, *, now, context=None):
    """Store occurrences and count them into the rollups and volumes; return their ids.

    `rows` are (group, message, batch_id, dlq_entry_id) tuples.
    """
    context = context or current_context()
    place = context.as_dict()
    ids = bulk.insert_rows(
        ErrorOccurrence,
        [
            {
                "group_id": group.pk,
                "occurred_at": now,
                "job_name": job_name,
                "message": message,
                "batch_id": batch_id,
                "dlq_entry_id": entry_id,
                **place,
            }
            for group, message, batch_id, entry_id in rows
        ],
    )
    if rows:
        per_group = Counter(group.pk for group, *_ in rows)
        _count_per_bucket(
            ErrorRollup,
            [{"group_id": pk, "job_name": job_name, "count": n} for pk, n in per_group.items()],
            now,
            context,
            key=ROLLUP_KEY,
            weeks=True,
        )
        _count_per_bucket(
            ErrorVolume,
            [{"job_name": job_name, "count": len(rows)}],
            now,
            context,
            key=VOLUME_KEY,
        )
        _note_places(job_name, context, now)
    return ids


def hour_of(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def week_of(moment):
    """The start of the moment's week (Monday, 00:00 UTC)."""
    day = day_of(moment)
    return day - timedelta(days=day.weekday())


def _count_per_bucket(model, counts, now, context, *, key, weeks=False):
    """Add each of `counts` to this hour's and today's (and this week's) row of `model`
    at the context's place; `key` is the rows' unique constraint (grain, bucket,
    place and the group or job). One statement for them all.
    """
    place = {"node_id": context.node_id, "region": context.region, "version": context.version}
    buckets = [(Grain.HOUR, hour_of(now)), (Grain.DAY, day_of(now))]
    if weeks:
        buckets.append((Grain.WEEK, week_of(now)))
    bulk.merge_rows(
        model,
        [
            {"grain": grain, "bucket": bucket, **place, **count}
            for grain, bucket in buckets
            for count in counts
        ],
        key=key,
        add=["count"],
    )


def _note_places(job_name, context, now):
    """Remember where errors came from (for the history's filter menus)."""
    places = {
        "job_name": job_name,
        "node_id": context.node_id,
        "region": context.region,
        "version": context.version,
    }
    bulk.merge_rows(
        ErrorPlace,
        [
            {"field": field, "value": value[:200], "last_seen": now}
            for field, value in places.items()
            if value
        ],
        key=["field", "value"],
        replace=["last_seen"],
    )


def link_occurrences(pairs):
    """Point occurrences at the DLQ entries stored for them later: (occurrence id, entry id)."""
    for occurrence_id, entry_id in pairs:
        ErrorOccurrence.objects.filter(pk=occurrence_id).update(dlq_entry_id=entry_id)
