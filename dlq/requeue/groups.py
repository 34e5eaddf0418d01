"""Requeueing whole error groups: one run per group, so each shows its own progress."""

from ..actors import Actor
from ..models import DLQEntry, RequeueRun
from .holds import ScopeHeld
from .runs import start_run
from .scope import InvalidRequeue, RequeueOptions, RequeueScope, newest_entry_id

# One run is started per group; more than this many at once is a mistake.
MAX_GROUPS = 100


def requeue_groups(
    group_ids, actor: Actor, options: RequeueOptions | None = None, *, held=None
) -> list[RequeueRun]:
    """Start a run over the pending entries of each group that has any; return the runs.

    Every run is cut at the same newest entry, so entries that fail after the
    operator chose the groups are left out of all of them. A group whose
    entries a live run holds gets no run: its ScopeHeld is added to `held`
    (a list, when given; raised otherwise) and the other groups go on.
    """
    group_ids = list(group_ids)
    if len(group_ids) > MAX_GROUPS:
        raise InvalidRequeue(f"Select at most {MAX_GROUPS} groups: each gets its own requeue run.")
    cut = newest_entry_id()
    runs = []
    for group_id in group_ids:
        if not DLQEntry.objects.filter(
            error_group_id=group_id, status=DLQEntry.Status.PENDING
        ).exists():
            continue
        scope = RequeueScope.matching(error_group=group_id, max_id=cut)
        try:
            runs.append(start_run(scope, options or RequeueOptions(), actor))
        except ScopeHeld as exc:
            if held is None:
                raise
            held.append(exc)
    return runs
