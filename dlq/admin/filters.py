"""Narrowing the DLQ list without scanning it: sidebar filters and the search box.

No filter here runs SELECT DISTINCT over the entries: the statuses and periods
are fixed, a batch is named only when the URL already carries its id, and the
groups offered are the few with the most entries waiting (of the job filtered
on), read from the groups' own backlog counts (ErrorGroup.dlq_pending), never
from the entries. The list opens on the pending entries: what waits for an
operator.

The search box looks in the error message (a trigram index on PostgreSQL) and,
once the list is narrowed to one job and one status, in the record's values
too: that scan reads every entry of that job and status, never the whole DLQ.
"""

import json
import math
import re
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import connections
from django.db.models import F, Lookup, Q, Value
from django.utils import timezone
from django.utils.text import Truncator

from common.ids import parse_id
from errors.models import ErrorGroup

from ..models import DLQEntry

BATCH_TERM = re.compile(r"batch:\s*([0-9]+)", re.IGNORECASE)
STATUS_PARAM = "status__exact"
ALL_STATUSES = "all"
# A value longer than this is in no record anyone types into a search box.
MAX_VALUE_CHARS = 500


def effective_status(params):
    """The status the list shows for these query parameters: pending unless one is chosen,
    None for every status ("All")."""
    value = params.get(STATUS_PARAM)
    if value is None:
        return DLQEntry.Status.PENDING
    return None if value == ALL_STATUSES else value


def effective_filters(params):
    """The list's query parameters with its default status spelled out: what an audit row
    records of the set an action was applied to."""
    filters = dict(params.items())
    filters.setdefault(STATUS_PARAM, DLQEntry.Status.PENDING)
    return filters


class StatusFilter(admin.SimpleListFilter):
    """Pending by default, any one status, or "All" as an explicit choice (status__exact=all).

    The parameter keeps the name of Django's own choices filter, so links that
    name a status (the health page's, a group's) work as they always have.
    """

    title = "status"
    parameter_name = STATUS_PARAM

    def lookups(self, request, model_admin):
        return DLQEntry.Status.choices

    def choices(self, changelist):
        shown = effective_status({STATUS_PARAM: self.value()} if self.value() else {})
        yield {
            "selected": shown is None,
            "query_string": changelist.get_query_string({STATUS_PARAM: ALL_STATUSES}),
            "display": "All",
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": shown == value,
                "query_string": changelist.get_query_string({STATUS_PARAM: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == ALL_STATUSES:
            return queryset
        if value is not None and value not in DLQEntry.Status.values:
            raise IncorrectLookupParameters(f"{STATUS_PARAM} must be a status or {ALL_STATUSES}")
        return queryset.filter(status=value or DLQEntry.Status.PENDING)


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
            # The job's groups by backlog: one (job_id, dlq_pending, count) index range.
            groups = groups.filter(job_id=job_id)
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


JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,20})(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,3})?")


class _HoldsValue(Lookup):
    """The record holds the term as one of its values, at any depth: the string as typed, or
    the number it spells. Values only, whole and case as typed: a key's name, a fragment or
    JSON punctuation never matches, so no term matches every record.

    On PostgreSQL a jsonpath (`@?`), on SQLite json_tree: both read each row's record, so
    this is only offered on a list narrowed to one job and one status.
    """

    lookup_name = "holds_value"
    prepare_rhs = False

    def __init__(self, lhs, term):
        self.term = term
        number = float(term) if JSON_NUMBER.fullmatch(term) else None
        self.number = number if number is not None and math.isfinite(number) else None
        super().__init__(lhs, Value(term))

    def as_sql(self, compiler, connection):  # SQLite
        lhs, lhs_params = self.process_lhs(compiler, connection)
        sql = f"EXISTS (SELECT 1 FROM json_tree({lhs}) AS v WHERE (v.type = 'text' AND v.atom = %s)"
        params = [*lhs_params, self.term]
        if self.number is not None:
            sql += " OR (v.type IN ('integer', 'real') AND v.atom = %s)"
            params.append(self.number)
        return sql + ")", params

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        # The term goes in as a jsonpath string literal (JSON's escaping is jsonpath's), the
        # whole path as one bound parameter: nothing the operator types reaches the SQL.
        condition = f"@ == {json.dumps(self.term, ensure_ascii=False)}"
        if self.number is not None:
            condition += f" || @ == {self.term}"
        return f"{lhs} @? %s::jsonpath", (*lhs_params, f"strict $.** ? ({condition})")


def search(queryset, term, *, in_payload=False):
    """An entry id, `batch:<id>`, or text in the error message; return the narrowed queryset.

    With `in_payload` (the list shows one job's entries of one status), an entry
    whose record holds the term as a value matches too.
    """
    term = term.strip()
    if not term:
        return queryset
    if "\x00" in term:  # PostgreSQL refuses NUL in text and in jsonb; nothing holds one
        return queryset.none()
    in_payload = in_payload and len(term) <= MAX_VALUE_CHARS
    # Digits name an entry, `batch:<digits>` a batch: one that no id can be finds nothing.
    if term.isascii() and term.isdigit():
        entry_id = parse_id(term)
        matches = Q(pk=entry_id) if entry_id else None
        if in_payload:
            value = Q(_HoldsValue(F("payload"), term))
            matches = value if matches is None else matches | value
        return queryset.filter(matches) if matches is not None else queryset.none()
    if BATCH_TERM.fullmatch(term):
        batch_id = search_batch(term)
        return queryset.filter(batch_id=batch_id) if batch_id else queryset.none()
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        matches = Q(error_message__icontains=term)
    else:
        pattern = f"%{connection.ops.prep_for_like_query(term)}%"
        matches = Q(_ILike(F("error_message"), Value(pattern)))
    if in_payload:
        matches |= Q(_HoldsValue(F("payload"), term))
    return queryset.filter(matches)


def search_batch(term):
    """The batch id a `batch:<id>` search names, or None."""
    match = BATCH_TERM.fullmatch((term or "").strip())
    return parse_id(match[1]) if match else None
