"""The audit trail: one row per operator action, written beside the action itself."""

from .models import OperatorAction

MAX_IDS_KEPT = 1000


def record(
    action,
    *,
    actor,
    target,
    count=0,
    filters=None,
    entry_ids=None,
    dry_run=False,
    outcome="",
    details=None,
    requeue_run=None,
    regroup_run=None,
):
    """Store what `actor` did (a dlq.actors.Actor) to `target`, in words and in ids."""
    return OperatorAction.objects.create(
        user=actor.db_user,
        username=actor.name[:150],
        via=actor.via,
        action=action,
        target=target[:200],
        filters=filters or {},
        entry_ids=list(entry_ids)[:MAX_IDS_KEPT] if entry_ids is not None else None,
        count=count,
        dry_run=dry_run,
        outcome=outcome,
        details=details or {},
        requeue_run=requeue_run,
        regroup_run=regroup_run,
    )
