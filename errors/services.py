"""Writes of the error tracker: group failures by fingerprint and record occurrences.

Callers run these inside their own transaction, beside the work that failed,
so a retried task can never count an error twice.
"""

from collections import Counter
from dataclasses import dataclass

from django.db.models import Case, F, Value, When

from . import bulk
from .context import current as current_context
from .fingerprint import fingerprint, normalize
from .models import (
    ErrorGroup,
    ErrorOccurrence,
    ErrorPlace,
    ErrorRollup,
    ErrorTotal,
    ErrorVolume,
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
    bulk.upsert(
        ErrorTotal,
        {"job_name": job_name},
        {"occurrences": F("occurrences") + count},
        {"occurrences": count},
    )


def save_occurrences(job_name, rows, *, now, context=None):
    """Store occurrences, and count them into the hourly rollups; return their ids.

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
    per_group = Counter(group.pk for group, *_ in rows)
    for group_id in sorted(per_group):
        _roll_up(job_name, group_id, per_group[group_id], now, context)
    if rows:
        _add_to_volume(job_name, len(rows), now, context)
        _note_places(job_name, context, now)
    return ids


def hour_of(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _roll_up(job_name, group_id, count, now, context):
    _count_per_bucket(ErrorRollup, {"group_id": group_id}, count, now, context, job_name=job_name)


def _add_to_volume(job_name, count, now, context):
    _count_per_bucket(ErrorVolume, {"job_name": job_name}, count, now, context)


def _count_per_bucket(model, key, count, now, context, **initial):
    """Add `count` to this hour's and today's row of `model` at `key` and the context's place."""
    place = {"node_id": context.node_id, "region": context.region, "version": context.version}
    for grain, bucket in (
        (ErrorRollup.Grain.HOUR, hour_of(now)),
        (ErrorRollup.Grain.DAY, day_of(now)),
    ):
        bulk.upsert(
            model,
            {"grain": grain, "bucket": bucket, **key, **place},
            {"count": F("count") + count},
            {**initial, "count": count},
        )


def _note_places(job_name, context, now):
    """Remember where errors came from (for the history's filter menus)."""
    places = {
        "job_name": job_name,
        "node_id": context.node_id,
        "region": context.region,
        "version": context.version,
    }
    for field, value in sorted(places.items()):
        if value:
            key = {"field": field, "value": value[:200]}
            bulk.upsert(ErrorPlace, key, {"last_seen": now}, {"last_seen": now})


def link_occurrences(pairs):
    """Point occurrences at the DLQ entries stored for them later: (occurrence id, entry id)."""
    for occurrence_id, entry_id in pairs:
        ErrorOccurrence.objects.filter(pk=occurrence_id).update(dlq_entry_id=entry_id)
