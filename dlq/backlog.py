"""Each error group's DLQ backlog (ErrorGroup.dlq_pending), kept as the entries change.

The health page ranks a job's errors by how many of its records wait in the
DLQ; counting them per visit would read every pending entry of the job. So
every change to an entry's openness or group adds to its groups' counts in
the same transaction, as JobCounters.dlq_pending is kept for the job. Open
means what dlq_pending counts: pending, or requeued and not resolved yet.
Regrouping moves entries in bulk; it recounts the groups it touched instead.
"""

from collections import Counter

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from common import bulk
from errors.models import ErrorGroup

from .models import DLQEntry

OPEN = (DLQEntry.Status.PENDING, DLQEntry.Status.REQUEUED)


def add(changes):
    """Add `changes` ({group id: n}, n may be negative) to the groups' backlogs."""
    rows = [
        {"pk": group_id, "dlq_pending": n}
        for group_id, n in Counter(changes).items()
        if group_id is not None and n
    ]
    bulk.update_rows(ErrorGroup, rows, add=["dlq_pending"])  # locked in id order


def recount(group_ids):
    """Set the groups' backlogs from their entries (an index range per group).

    The group rows are locked first, in a statement of their own: a writer
    holding one has committed by then, and the UPDATE's snapshot (taken when it
    starts, on PostgreSQL) counts its entries instead of overwriting its change.
    Run it in a transaction.
    """
    if not group_ids:
        return
    list(
        ErrorGroup.objects.select_for_update()
        .filter(pk__in=sorted(group_ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    open_entries = (
        DLQEntry.objects.filter(error_group=OuterRef("pk"), status__in=OPEN)
        .order_by()
        .values("error_group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    ErrorGroup.objects.filter(pk__in=sorted(group_ids)).update(
        dlq_pending=Coalesce(Subquery(open_entries), 0)
    )
