"""The audit trail: one row per operator action, written beside the action itself."""

from .models import OperatorAction

MAX_IDS_KEPT = 1000


def record(
    action,
    *,
    user=None,
    username=None,
    via="admin",
    target,
    count=0,
    filters=None,
    entry_ids=None,
    dry_run=False,
    outcome="",
    details=None,
    requeue_run=None,
):
    """Store what an operator did; `username` defaults to the user's, for shells and tokens."""
    if username is None:
        username = user.get_username() if user is not None else "system"
    return OperatorAction.objects.create(
        user=user if user is not None and user.pk else None,
        username=username[:150],
        via=via,
        action=action,
        target=target[:200],
        filters=filters or {},
        entry_ids=list(entry_ids)[:MAX_IDS_KEPT] if entry_ids is not None else None,
        count=count,
        dry_run=dry_run,
        outcome=outcome,
        details=details or {},
        requeue_run=requeue_run,
    )
