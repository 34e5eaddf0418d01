"""Narrowing the DLQ list without scanning it: sidebar filters and the search box.

No filter here runs SELECT DISTINCT over the entries: the periods are fixed,
a batch is named only when the URL already carries its id, and the groups
offered are the few with the most entries waiting (of the job filtered on),
read from the groups' own backlog counts (ErrorGroup.dlq_pending), never from
the entries.
"""

import re
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import connections
from django.db.models import F, Lookup, Value
from django.utils import timezone
from django.utils.text import Truncator

from common.ids import parse_id
from errors.models import ErrorGroup

from ..models import Job

BATCH_TERM = re.compile(r"batch:\s*([0-9]+)", re.IGNORECASE)


class _OneIdFilter(admin.SimpleListFilter):
    """A filter on one related id, shown in the sidebar only while it is active."""

    def has_output(self):
        # The admin drops a filter without output, and its parameter with it: an
        # unknown id would then list every entry instead of none.
        return self.value() is not None

    def _pk(self):
        """The id the URL names, blanks around it allowed; None when it names none."""
        value = self.value()
        return parse_id(value.strip()) if value is not None else None

    def lookups(self, request, model_admin):
        pk = self._pk()
        return [(str(pk), self.label(pk))] if pk is not None else []

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        pk = self._pk()
        if pk is None:
            raise IncorrectLookupParameters(f"{self.parameter_name} must be an id")
        return queryset.filter(**{self.field: pk})


class ErrorGroupFilter(_OneIdFilter):
    """The selected group, or the groups with the biggest backlog (of the job filtered on)."""

    title = "error group"
    parameter_name = "error_group__id__exact"
    field = "error_group_id"
    group = None
    OFFERED = 10

    def has_output(self):
        return True

    def lookups(self, request, model_admin):
        if self.value() is not None:
            return super().lookups(request, model_admin)
        groups = ErrorGroup.objects.filter(dlq_pending__gt=0)
        job_id = parse_id(request.GET.get("job__id__exact", ""))
        if job_id is not None:
            # The job's groups by backlog: one (job_name, dlq_pending, count) index range.
            groups = groups.filter(job_name__in=Job.objects.filter(pk=job_id).values("name"))
        top = groups.only("job_name", "template", "dlq_pending").order_by("-dlq_pending", "-count")[
            : self.OFFERED
        ]
        # Two jobs often fail alike: without a job filter, the job tells their groups apart.
        job = "{}: " if job_id is None else ""
        return [
            (
                str(g.pk),
                f"{job.format(g.job_name)}{Truncator(g.template).chars(60)} ({g.dlq_pending})",
            )
            for g in top
        ]

    def label(self, pk):
        self.group = (
            ErrorGroup.objects.filter(pk=pk).only("job_name", "error_type", "template").first()
        )
        if self.group is None:
            return f"#{pk} (no such group)"
        return f"#{pk} {self.group.error_type}: {Truncator(self.group.template).chars(80)}"


class BatchFilter(_OneIdFilter):
    title = "batch"
    parameter_name = "batch__id__exact"
    field = "batch_id"

    def label(self, pk):
        return f"Batch {pk}"


class CreatedFilter(admin.SimpleListFilter):
    """Fixed periods: a date_hierarchy would run SELECT DISTINCT over every entry's date."""

    title = "created"
    parameter_name = "created"
    periods = {
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(days=1)),
        "7d": ("Last 7 days", timedelta(days=7)),
        "30d": ("Last 30 days", timedelta(days=30)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.periods.items()]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in self.periods:
            raise IncorrectLookupParameters(f"created must be one of {', '.join(self.periods)}")
        return queryset.filter(created_at__gte=timezone.now() - self.periods[self.value()][1])


class _ILike(Lookup):
    """PostgreSQL's ILIKE: the trigram index serves it; Django's icontains (UPPER … LIKE) not."""

    lookup_name = "ilike"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", (*lhs_params, *rhs_params)


def search(queryset, term):
    """An entry id, `batch:<id>`, or text in the error message; return the narrowed queryset."""
    term = term.strip()
    if not term:
        return queryset
    # Digits name an entry, `batch:<digits>` a batch: one that no id can be finds nothing.
    if term.isascii() and term.isdigit():
        entry_id = parse_id(term)
        return queryset.filter(pk=entry_id) if entry_id else queryset.none()
    if BATCH_TERM.fullmatch(term):
        batch_id = search_batch(term)
        return queryset.filter(batch_id=batch_id) if batch_id else queryset.none()
    if "\x00" in term:  # PostgreSQL refuses NUL in text; no message holds one
        return queryset.none()
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.filter(error_message__icontains=term)
    pattern = f"%{connection.ops.prep_for_like_query(term)}%"
    return queryset.filter(_ILike(F("error_message"), Value(pattern)))


def search_batch(term):
    """The batch id a `batch:<id>` search names, or None."""
    match = BATCH_TERM.fullmatch((term or "").strip())
    return parse_id(match[1]) if match else None
