"""What a regroup does to the DLQ: its entries' messages count in the plan, and each entry
follows its message to its new group."""

from collections import Counter

from django.db import transaction

from errors import regroup as history

from .. import backlog
from ..engine.store import grouping_message
from ..models import DLQEntry

CHUNK = 2000


def stored_messages(job):
    """(group id, error type, message, pending) of each of the job's entries, for the plan."""
    entries = DLQEntry.objects.filter(job=job).order_by("pk")
    last = 0
    while True:
        rows = list(
            entries.filter(pk__gt=last).values_list(
                "pk", "error_group_id", "error_type", "error_message", "status"
            )[:CHUNK]
        )
        if not rows:
            return
        for _, group_id, error_type, message, status in rows:
            yield group_id, error_type, grouping_message(message), status == DLQEntry.Status.PENDING
        last = rows[-1][0]


def move(plan, rules, job, after, *, size=CHUNK):
    """Move the next chunk of the job's entries past id `after` to their groups under the plan;
    return (moved, last id or None). Run it in the caller's transaction, with its cursor."""
    rows = list(
        DLQEntry.objects.select_for_update()
        .filter(job=job, pk__gt=after)
        .order_by("pk")
        .values_list("pk", "error_group_id", "error_type", "error_message", "status")[:size]
    )
    if not rows:
        return 0, None
    moves, backlogs = {}, Counter()
    for pk, group_id, error_type, message, status in rows:
        target = history.target_of(plan, rules, error_type, grouping_message(message), group_id)
        if target != group_id:
            moves.setdefault(target, []).append(pk)
            if status in backlog.OPEN:
                backlogs[group_id] -= 1
                backlogs[target] += 1
    for target, ids in sorted(moves.items()):
        DLQEntry.objects.filter(pk__in=ids).update(error_group_id=target)
    backlog.add(backlogs)
    return sum(len(ids) for ids in moves.values()), rows[-1][0]


def fold(group_ids, into):
    """Every entry of the groups `group_ids` into the group `into` (before they are deleted)."""
    with transaction.atomic():
        moved = DLQEntry.objects.filter(error_group_id__in=sorted(group_ids)).update(
            error_group_id=into
        )
        backlog.recount([*group_ids, into])
        return moved
