"""An entry's attempt history: its original attempt, then every attempt row stored for it.

A failed record is stored as its entry alone (SPEC §3 lets the original attempt
live in the entry's row): its creation time, node and error message as first
stored are the original attempt, which costs a storm no second row. Until the
entry's error is overwritten, that is: whatever is about to overwrite it (a
requeue that fails again) first calls `store_originals`, in its transaction,
and sets `original_attempt_stored` in the same UPDATE that overwrites it.
Readers take the history from `of_entry`, which puts the original first either way.
"""

from django.db import connections, router

from .models import DLQAttempt

# Who runs a record's first processing (a requeue's attempts name their operator).
WORKER = "worker"


def original_attempt(entry):
    """The original attempt as the entry's row holds it (unsaved: there is no row of it)."""
    return DLQAttempt(
        entry=entry,
        kind=DLQAttempt.Kind.ORIGINAL,
        started_by=WORKER,
        outcome=DLQAttempt.Outcome.FAILED,
        error_message=entry.error_message,
        node_id=entry.node_id,
        at=entry.created_at,
    )


def of_entry(entry):
    """Every attempt of `entry`, oldest first, the original one included."""
    stored = list(entry.history.order_by("at", "pk"))
    if entry.original_attempt_stored:
        return stored
    return [original_attempt(entry), *stored]


def store_originals(entry_ids):
    """Write the original attempt's row of those of `entry_ids` whose row still holds it,
    from the row as it is now; the caller, holding the entries locked, is about to
    overwrite their error and sets original_attempt_stored in that same UPDATE.

    One INSERT ... SELECT for them all: the messages never travel to Python and back,
    and an entry already flagged (a second failed requeue) writes nothing.
    """
    if not entry_ids:
        return
    ids = sorted(entry_ids)
    with connections[router.db_for_write(DLQAttempt)].cursor() as cursor:
        cursor.execute(
            "INSERT INTO dlq_dlqattempt"
            " (entry_id, kind, started_by, outcome, error_message, payload_edited, node_id, at)"
            " SELECT id, %s, %s, %s, error_message, %s, node_id, created_at FROM dlq_dlqentry"
            f" WHERE id IN ({', '.join(['%s'] * len(ids))}) AND NOT original_attempt_stored"
            " ORDER BY id",
            [DLQAttempt.Kind.ORIGINAL, WORKER, DLQAttempt.Outcome.FAILED, False, *ids],
        )
