"""Walking a big queryset in id order, a chunk at a time, so no million rows sit in memory."""

from django.db import transaction
from django.db.models import Sum


def iter_id_chunks(queryset, size, *, values=None):
    """`queryset`'s rows in ascending id order, `size` at a time: lists of ids, or with
    `values` (field names, "id" among them) lists of dicts of those fields.

    Keyset paging (id > the last one seen), never OFFSET: each chunk is one
    index range read however far the walk has gone, and rows deleted or changed
    between chunks neither shift nor repeat the rest.
    """
    if values is not None and "id" not in values:
        raise ValueError('values must include "id": the walk goes on from the last one')
    rows = queryset.order_by("pk")
    rows = rows.values(*values) if values is not None else rows.values_list("pk", flat=True)
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last)[:size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]["id"] if values is not None else chunk[-1]


def delete_in_chunks(expired, size, *, weight=None):
    """Delete the rows of `expired` a chunk of ids at a time, each chunk in its own transaction;
    return how many went, or with `weight` (a field) the sum of it over them (an occurrence
    row stands for `count` failures).

    The delete repeats the filter, so a row that changed since its id was read
    stays. `only("pk")` keeps the ORM's cascade from loading whole rows (a DLQ
    entry's attempt history goes with it, deleted by entry id).
    """
    label = expired.model._meta.label
    total = 0
    for ids in iter_id_chunks(expired, size):
        with transaction.atomic():
            doomed = expired.filter(pk__in=ids)
            if weight is not None:
                total += doomed.aggregate(n=Sum(weight))["n"] or 0
            _, per_model = doomed.only("pk").delete()
        if weight is None:
            total += per_model.get(label, 0)
    return total
