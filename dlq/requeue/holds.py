"""One run per scope at a time: a run over entries that a live run still holds is refused.

A live run (queued, running, or waiting out its rate limit) holds the pending
entries of its scope past its cursor, and the entries it has claimed. A second
run reaching any of them would attempt again each one that fails again: the
first run sends it back to pending, then the second reaches it (two "requeue
all matching" over one filter made 60,056 attempts of 30,028 entries). So a
new run whose scope reaches an entry a live run holds is refused, naming that
run; the operator waits for it or cancels it. Entries a live run has already
passed (failed again, behind its cursor) are not held: it never returns to them.

The check and the new run's row are made under one lock, so two requests at
once cannot both pass it: a transaction-scoped advisory lock on PostgreSQL,
and on SQLite the write lock its IMMEDIATE transactions take at BEGIN.
"""

from django.db import connection
from django.db.models import Q

from ..models import DLQEntry, RequeueRun
from .scope import ID_SLICE, RequeueScope

# pg_advisory_xact_lock's key for "a requeue run is being created" (any constant will do).
CREATE_LOCK = 0x76656C6F5251  # "veloRQ"


class ScopeHeld(Exception):
    """A run that cannot start: `run`, live, holds entries of its scope."""

    def __init__(self, run):
        self.run = run
        state = "asked to cancel" if run.cancel_requested else run.status
        super().__init__(
            f"requeue run {run.pk} ({state}, {run.done} of {run.total} done) already holds "
            "entries of this selection: wait for it to end, or cancel it"
        )


def lock_creation():
    """Within the caller's transaction: one run is created at a time (until it commits)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CREATE_LOCK])
    # SQLite (settings: transaction_mode IMMEDIATE): the transaction holds the write lock.


def refuse_if_held(scope: RequeueScope):
    """ScopeHeld naming the first live run that holds an entry `scope` reaches."""
    live = RequeueRun.objects.filter(status__in=RequeueRun.ACTIVE, dry_run=False).order_by("pk")
    for run in live.only(
        "status", "entry_ids", "filters", "max_id", "last_id", "done", "total", "cancel_requested"
    ):
        if _holds(run, scope):
            raise ScopeHeld(run)


def _holds(run, scope):
    theirs = RequeueScope.of_run(run)
    if not _may_meet(theirs, scope, run.last_id):
        return False
    held = DLQEntry.objects.filter(
        Q(status=DLQEntry.Status.PENDING)
        | Q(status=DLQEntry.Status.REQUEUED, requeue_run_id=run.pk),
        pk__gt=run.last_id,
    )
    held = scope.narrow(theirs.narrow(held))
    ids = _common_ids(theirs, scope)
    if ids is None:
        return held.exists()
    ids = [pk for pk in ids if pk > run.last_id]
    return any(
        held.filter(pk__in=ids[i : i + ID_SLICE]).exists() for i in range(0, len(ids), ID_SLICE)
    )


def _may_meet(theirs, ours, cursor):
    """False when the two scopes cannot share an entry past `cursor`, told without a query."""
    for key in ("job", "error_group", "batch"):
        a, b = getattr(theirs, key), getattr(ours, key)
        if a is not None and b is not None and a != b:
            return False  # an entry has one job, one group, one batch
    if ours.max_id is not None and ours.max_id <= cursor:
        return False
    ids = _common_ids(theirs, ours)
    return ids is None or any(pk > cursor for pk in ids)


def _common_ids(a, b):
    """The ids both scopes' id lists allow, sorted; None when neither has one."""
    if a.entry_ids is None and b.entry_ids is None:
        return None
    if a.entry_ids is None or b.entry_ids is None:
        return list(a.entry_ids if b.entry_ids is None else b.entry_ids)
    return sorted(set(a.entry_ids) & set(b.entry_ids))
