"""Writes of the error tracker: group failures by fingerprint and record occurrences.

Callers run these inside their own transaction, beside the work that failed,
so a retried task can never count an error twice.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction

from common import bulk
from common import text as bounded

from . import fingerprint_v1 as v1
from .context import current as current_context
from .fingerprint import GROUPING_VERSION
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
    GroupKey,
)
from .rules import NONE as NO_RULES


@dataclass(frozen=True)
class Failure:
    """One failed record attempt, as the error tracker sees it."""

    error_type: str
    message: str


@dataclass
class _Key:
    """What the failures of one fingerprint in a batch share."""

    fingerprint: str
    template: str
    error_type: str
    message: str  # the latest
    count: int = 0
    last: int = 0  # the position of the latest in the batch


def group_failures(job_name, failures, *, now, rules=NO_RULES, job_id=None, job_key=None):
    """Count each failure into its group (creating or reopening it); return the groups in order.

    A failure's group is the one its fingerprint (under the built-in rules and
    the job's own, `rules`) leads to: a GroupKey. A fingerprint that leads
    nowhere is tried under the rules of version 1 (a group made before this
    version keeps its errors), else it makes a group.

    The fingerprint hashes the job's `job_key` (the job's name when none is
    given), which a job keeps when renamed; a new group is the job's
    (`job_id`) and shows `job_name`.
    """
    if not failures:
        return []
    job_key = job_name if job_key is None else job_key
    fingerprints, keys, seen = [], {}, {}
    for position, failure in enumerate(failures):
        # A storm repeats a few messages: each distinct one is bounded and fingerprinted once.
        found = seen.get((failure.error_type, failure.message))
        if found is None:
            # Whoever reports it, a group's template and last message hold a bounded message.
            message = bounded.error_message(failure.message)
            found = (message, *rules.key(job_key, failure.error_type, message))
            seen[(failure.error_type, failure.message)] = found
        message, fp, template = found
        key = keys.setdefault(fp, _Key(fp, template, failure.error_type, message))
        key.message, key.last = message, position
        key.count += 1
        fingerprints.append(fp)
    group_of = _find_groups(job_name, job_id, job_key, keys, now)
    counted = _count_per_group(keys, group_of)
    _count_into_groups(counted, now)
    _add_to_total(job_name, len(failures))
    groups = ErrorGroup.objects.in_bulk(sorted(counted))
    return [groups[group_of[fp]] for fp in fingerprints]


def _find_groups(job_name, job_id, job_key, keys, now):
    """{fingerprint: group id} for every key: found, found under version 1, or made."""
    group_of = dict(
        GroupKey.objects.filter(fingerprint__in=sorted(keys)).values_list("fingerprint", "group_id")
    )
    missing = [keys[fp] for fp in sorted(keys) if fp not in group_of]
    if missing:
        older = {
            key.fingerprint: v1.fingerprint(job_key, key.error_type, key.message) for key in missing
        }
        found = dict(
            GroupKey.objects.filter(
                fingerprint__in=sorted(set(older.values())), grouping_version=1
            ).values_list("fingerprint", "group_id")
        )
        for key in missing:
            group_id = found.get(older[key.fingerprint])
            if group_id is None:
                group_id = _make_group(job_name, job_id, key, now)
            group_of[key.fingerprint] = _add_key(key, group_id, now)
    return group_of


def _make_group(job_name, job_id, key, now):
    """The group made with `key`'s fingerprint; one group however many workers race to make it."""
    group, _ = _get_or_create(
        ErrorGroup,
        fingerprint=key.fingerprint,
        defaults={
            "job_name": job_name,
            "job_id": job_id,
            "error_type": key.error_type,
            "template": key.template,
            "last_message": key.message,
            "count": 0,
            "first_seen": now,
            "last_seen": now,
            "grouping_version": GROUPING_VERSION,
        },
    )
    return group.pk


def _add_key(key, group_id, now):
    """Store that `key` leads to `group_id`; return the group it leads to (another worker's
    if it stored the same key first)."""
    stored, _ = _get_or_create(
        GroupKey,
        fingerprint=key.fingerprint,
        defaults={
            "group_id": group_id,
            "grouping_version": GROUPING_VERSION,
            "template": key.template,
            "created_at": now,
        },
    )
    return stored.group_id


def _get_or_create(model, *, defaults, **lookup):
    """get_or_create that survives a race inside the caller's transaction (in a savepoint)."""
    try:
        with transaction.atomic():
            return model.objects.get_or_create(**lookup, defaults=defaults)
    except IntegrityError:
        return model.objects.get(**lookup), False


def _count_per_group(keys, group_of):
    """{group id: (failures, latest message)}: keys that lead to one group count together."""
    counted = {}
    for key in sorted(keys.values(), key=lambda key: key.last):
        group_id = group_of[key.fingerprint]
        count, _ = counted.get(group_id, (0, None))
        counted[group_id] = (count + key.count, key.message)
    return counted


def _count_into_groups(counted, now):
    """Count {group id: (failures, latest message)} into the groups: one statement for all of
    them (a storm of many errors touches hundreds of groups a batch), locked in id order."""
    bulk.update_rows(
        ErrorGroup,
        [
            {"pk": group_id, "count": count, "last_seen": now, "last_message": message}
            for group_id, (count, message) in counted.items()
        ],
        add=["count"],
        replace=["last_seen", "last_message"],
    )
    # A new occurrence of a resolved group reopens it: a regression.
    ErrorGroup.objects.filter(pk__in=sorted(counted), status=ErrorGroup.Status.RESOLVED).update(
        status=ErrorGroup.Status.UNRESOLVED, regressed_at=now
    )


def _add_to_total(job_name, count):
    bulk.merge_rows(
        ErrorTotal,
        [{"job_name": job_name, "occurrences": count}],
        key=["job_name"],
        add=["occurrences"],
    )


def save_occurrences(job_name, rows, *, now, context=None):
    """Record failures as occurrences and count them into the rollups and volumes.

    `rows` are (group, message, batch_id) tuples, one a failure, all of one batch
    attempt (or requeue chunk) at `now` on this node: those that share a group,
    a message and a batch are stored as one occurrence with their count.
    """
    if not rows:
        return
    context = context or current_context()
    place = context.as_dict()
    counted = Counter()  # bounded once per distinct message, not per failure
    for (group_id, message, batch_id), n in Counter(
        (group.pk, message, batch_id) for group, message, batch_id in rows
    ).items():
        counted[(group_id, bounded.error_message(message), batch_id)] += n
    bulk.insert_rows(
        ErrorOccurrence,
        [
            {
                "group_id": group_id,
                "occurred_at": now,
                "job_name": job_name,
                "message": message,
                "batch_id": batch_id,
                "count": n,
                **place,
            }
            for (group_id, message, batch_id), n in counted.items()
        ],
    )
    per_group = Counter()
    for (group_id, _, _), n in counted.items():
        per_group[group_id] += n
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


def minute_of(moment):
    return moment.replace(second=0, microsecond=0)


def hour_of(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def week_of(moment):
    """The start of the moment's week (Monday, 00:00 UTC)."""
    day = day_of(moment)
    return day - timedelta(days=day.weekday())


def _count_per_bucket(model, counts, now, context, *, key, weeks=False):
    """Add each of `counts` to this minute's, hour's and today's (and this week's) row of
    `model` at the context's place; `key` is the rows' unique constraint (grain,
    bucket, place and the group or job). One statement for them all: this runs
    for every batch that fails.
    """
    place = {"node_id": context.node_id, "region": context.region, "version": context.version}
    buckets = [(Grain.MINUTE, minute_of(now)), (Grain.HOUR, hour_of(now)), (Grain.DAY, day_of(now))]
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


def rename_job(job_id, name):
    """The job `job_id` is now called `name`: its groups and counts say so.

    Called in the rename's transaction. The pages, the API and the metrics read
    the stored name (no join per row); a rename is rare, so it pays here once,
    over rows that grow with groups and time buckets, not with failures. The
    per-job totals, volumes and the filter menu's entry, keyed by name, merge
    into the new name's rows (a job gone may have left some). Occurrences keep
    the name they were recorded under: rewriting a million of them took 32 s
    on PostgreSQL, longer than a request may take; whoever lists them reads
    their group's name, and nothing selects them by name.
    """
    groups = ErrorGroup.objects.filter(job_id=job_id)
    old_names = sorted(set(groups.exclude(job_name=name).values_list("job_name", flat=True)))
    if not old_names:
        return
    with transaction.atomic():
        groups.update(job_name=name)
        ErrorRollup.objects.filter(group__job_id=job_id).update(job_name=name)
        for old in old_names:
            _move_rows(ErrorTotal, old, name, key=["job_name"], add=["occurrences"])
            _move_rows(ErrorVolume, old, name, key=list(VOLUME_KEY), add=["count"])
            _move_place(old, name)


def _move_rows(model, old, new, *, key, add):
    """Fold `model`'s rows of job `old` into those of `new` (unique keys hold the name)."""
    rows = model.objects.filter(job_name=old)
    fields = [f for f in key if f != "job_name"] + add
    moved = [{**row, "job_name": new} for row in rows.values(*fields)]
    rows.delete()
    bulk.merge_rows(model, moved, key=key, add=add)


def _move_place(old, new):
    """The filter menu lists `new`; `old` only while a group (of a job gone) still has it."""
    place = ErrorPlace.objects.filter(field="job_name", value=old).first()
    if place is None:
        return
    bulk.merge_rows(
        ErrorPlace,
        [{"field": "job_name", "value": new, "last_seen": place.last_seen}],
        key=["field", "value"],
        replace=["last_seen"],
    )
    if not ErrorGroup.objects.filter(job_name=old).exists():
        place.delete()


def forget_job(job_id):
    """The job `job_id` is gone: its groups stay, under its name, belonging to no job."""
    ErrorGroup.objects.filter(job_id=job_id).update(job_id=None, dlq_pending=0)
