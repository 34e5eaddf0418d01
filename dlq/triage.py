"""Operator actions on DLQ entries and error groups other than requeue: discard, edit, resolve.

Each is one service function that the admin, the API and the shell all call,
and each writes its audit row in the same transaction as the change.
"""

from collections import Counter

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from common.chunks import iter_id_chunks
from errors.models import ErrorGroup

from . import audit, backlog, redaction, requeue
from .actors import Actor
from .ingest import records
from .models import DLQEntry, JobCounters, OperatorAction, RequeueRun
from .requeue import RequeueOptions, RequeueScope

DISCARD_CHUNK = 1000


def discard(entries: QuerySet, *, actor: Actor, target="selected DLQ entries", filters=None) -> int:
    """Discard the pending entries of a queryset, in id chunks; return how many.

    The audit row keeps the filter it was given and the ids it discarded (the
    first thousand).
    """
    discarded = []
    for chunk in iter_id_chunks(entries.filter(status=DLQEntry.Status.PENDING), DISCARD_CHUNK):
        discarded += _discard_chunk(chunk)
    audit.record(
        OperatorAction.Action.DISCARD,
        actor=actor,
        target=target,
        count=len(discarded),
        filters=filters,
        entry_ids=discarded,
        outcome=f"{len(discarded)} entries discarded",
    )
    return len(discarded)


def _discard_chunk(ids):
    """Discard what is still pending among `ids`; return the ids discarded."""
    now = timezone.now()
    with transaction.atomic():
        locked = list(
            DLQEntry.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, status=DLQEntry.Status.PENDING)
            .order_by("pk")
            .values_list("pk", "job_id", "error_group_id")
        )
        DLQEntry.objects.filter(pk__in=[pk for pk, _, _ in locked]).update(
            status=DLQEntry.Status.DISCARDED, resolved_at=now
        )
        for job_id, count in sorted(Counter(job_id for _, job_id, _ in locked).items()):
            JobCounters.objects.filter(job_id=job_id).update(
                dlq_pending=F("dlq_pending") - count, dlq_discarded=F("dlq_discarded") + count
            )
        backlog.add({group_id: -n for group_id, n in Counter(g for _, _, g in locked).items()})
    return [pk for pk, _, _ in locked]


class EditRefused(ValueError):
    """An edited payload that cannot be used, or an entry that is no longer pending."""


def edit_and_requeue(entry_id: int, payload, *, actor: Actor) -> RequeueRun:
    """Replace a pending entry's payload (the original is kept) and start a one-entry run
    on a worker to requeue it; return the run.

    The edit and the run are one transaction: when a live run holds the entry
    (requeue.ScopeHeld), nothing is changed.
    """
    try:
        records.validate([payload])
    except records.InvalidRecords as exc:
        raise EditRefused(str(exc).replace("record 0", "the payload")) from None
    with transaction.atomic():
        entry = DLQEntry.objects.select_for_update().filter(pk=entry_id).first()
        if entry is None or entry.status != DLQEntry.Status.PENDING:
            raise EditRefused(
                f"DLQ entry {entry_id} is not pending; only pending entries are edited"
            )
        before = entry.payload
        redactor = redaction.for_job(entry.job)
        DLQEntry.objects.filter(pk=entry_id).update(
            original_payload=entry.original_payload
            if entry.original_payload is not None
            else before,
            payload=payload,
        )
        audit.record(
            OperatorAction.Action.EDIT,
            actor=actor,
            target=f"DLQ entry {entry_id}",
            count=1,
            entry_ids=[entry_id],
            outcome="payload replaced",
            # The audit trail is read more widely than the entry: its secrets stay masked.
            details={"before": redactor.mask(before), "after": redactor.mask(payload)},
        )
        return requeue.start_run(RequeueScope.of_ids([entry_id]), RequeueOptions(), actor)


def set_group_status(groups: QuerySet, status: str, *, actor: Actor) -> int:
    """Resolve or ignore error groups (a queryset); return how many changed."""
    action = {
        ErrorGroup.Status.RESOLVED: OperatorAction.Action.RESOLVE,
        ErrorGroup.Status.IGNORED: OperatorAction.Action.IGNORE,
    }[status]
    with transaction.atomic():
        ids = list(groups.values_list("pk", flat=True))
        changed = ErrorGroup.objects.filter(pk__in=ids).exclude(status=status).update(status=status)
        audit.record(
            action,
            actor=actor,
            target=f"{len(ids)} error groups",
            count=changed,
            details={"error_groups": ids[: audit.MAX_IDS_KEPT]},
            outcome=f"{changed} groups marked {status}",
        )
    return changed
