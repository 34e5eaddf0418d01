"""Merging error groups an operator chose into one, at once: the one most errors were counted in
keeps its id, and the others' history, DLQ entries and keys follow into it."""

from django.db import transaction
from django.utils import timezone

from errors import regroup as history
from errors.fingerprint import GROUPING_VERSION

from .. import audit
from ..models import OperatorAction
from . import entries
from .runs import InvalidRegroup

MAX_GROUPS = 100


def merge_groups(groups, *, actor):
    """Merge the groups of a queryset (two or more, of one job) into one; return it."""
    chosen = list(groups.order_by("-count", "pk")[: MAX_GROUPS + 1])
    if len(chosen) < 2:
        raise InvalidRegroup("select two groups or more to merge")
    if len(chosen) > MAX_GROUPS:
        raise InvalidRegroup(f"merge at most {MAX_GROUPS} groups at once")
    jobs = {(group.job_id, group.job_name) for group in chosen}
    if len(jobs) > 1:
        names = ", ".join(sorted({name for _, name in jobs}))
        raise InvalidRegroup(f"groups of different jobs cannot merge: {names}")
    into, others = chosen[0], chosen[1:]
    plan = {
        "job": into.job_name,
        "version": GROUPING_VERSION,
        "max_occurrence_id": 0,
        "targets": {into.fingerprint: into.pk},
        "new": {},
        "absorbed": {str(group.pk): into.fingerprint for group in others},
        "templates": {into.fingerprint: into.template},
    }
    with transaction.atomic():
        moved = entries.fold([group.pk for group in others], into.pk)
        history.finish(plan, now=timezone.now())
        audit.record(
            OperatorAction.Action.MERGE,
            actor=actor,
            target=f"error groups {', '.join(str(g.pk) for g in chosen)}"[:200],
            count=len(chosen),
            details={"into": into.pk, "groups": [group.pk for group in others]},
            outcome=f"merged into group {into.pk}; {moved} DLQ entries followed",
        )
    into.refresh_from_db()
    return into
