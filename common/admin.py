"""The admin kit both apps build on: read-only admins, changelists that stay fast on tables
with millions of rows, escaped display blocks, one-line text cells and relative times."""

import json

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from .moments import moment_html


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine and the tracker write; changing or deleting them by hand would
    break their counters (and a delete confirmation page would collect every related
    row first). Operators act through actions and services instead."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def pre(text):
    """Stored text in a <pre>: always escaped, whatever a record or a message holds."""
    return format_html("<pre>{}</pre>", text)


def pretty_json(value):
    return pre(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def cut(text, *, minor=False):
    """A long text in a list cell: one line, cut with an ellipsis by CSS (velo/admin.css) to the
    room the other columns leave, the whole text on hover. A `minor` column gets a smaller share
    of that room than the others."""
    if not text:
        return "-"
    css = "velo-cut minor" if minor else "velo-cut"
    return format_html('<span class="{}" title="{}">{}</span>', css, text, text)


def moment_column(field, description=None):
    """A display method showing the datetime `field` as "3 min ago" / "in 2 h", UTC on hover.

    For list_display and (as a read-only field) detail pages: the column still sorts by the
    field. Its name must differ from the field's: the admin looks model fields up first.
    `description` defaults to the field's name without "_at" ("created_at" → "created").
    """

    @admin.display(
        description=description or field.removesuffix("_at").replace("_", " "), ordering=field
    )
    def show(model_admin, obj):
        return moment_html(getattr(obj, field))

    return show


def admin_link(viewname, pk, text):
    return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered PostgreSQL table from the planner's estimate once it is large.

    A COUNT(*) over a million DLQ rows costs 50–240 ms on every page view; the
    estimate (pg_class.reltuples, kept up to date by autovacuum's ANALYZE) is
    free. A filtered list, a small table, a never-analysed table and SQLite
    get the exact count. With an estimate the last page may come up a little
    short or long; on a list of millions nobody pages to the end.
    """

    estimate_above = 100_000

    @cached_property
    def count(self):
        counted = self._whole_table_count() if self._is_whole_table() else None
        return super().count if counted is None else counted

    def _is_whole_table(self):
        query = getattr(self.object_list, "query", None)
        if query is None or query.where or query.distinct or query.is_sliced:
            return False
        return not query.combinator and query.group_by is None

    def _whole_table_count(self):
        connection = connections[self.object_list.db]
        if connection.vendor != "postgresql":
            return None
        table = connection.ops.quote_name(self.object_list.model._meta.db_table)
        # One round trip: the COUNT(*) is an InitPlan that PostgreSQL runs only
        # when the CASE reaches it, i.e. when the table is small or never
        # analysed (reltuples is -1 until the first ANALYZE).
        sql = (
            "SELECT CASE WHEN reltuples > %s THEN reltuples::bigint"
            f" ELSE (SELECT COUNT(*) FROM {table}) END"
            " FROM pg_class WHERE oid = to_regclass(%s)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.estimate_above, table])
            row = cursor.fetchone()
        return None if row is None else row[0]


class BoundedCountPaginator(EstimatedCountPaginator):
    """Also bounds the count of a filtered list: exact up to `count_exactly_up_to` rows, the
    planner's estimate beyond.

    A list that opens filtered (the DLQ's pending entries) would otherwise count
    most of the table on every view: 75 ms over 850,000 pending entries, even
    index-only. The first page is read first: when it holds the whole list its
    length is the count, and no query counts (a search that finds a few rows
    reads them once, not twice). Otherwise a LIMITed subquery counts at most
    that many index entries, and the estimate is one EXPLAIN.
    `count_is_estimate` lets the page say "about". SQLite counts exactly.
    """

    count_exactly_up_to = 10_000
    count_is_estimate = False

    @cached_property
    def count(self):
        queryset = self.object_list
        if not hasattr(queryset, "query") or self._is_whole_table():
            counted = super().count
            self.count_is_estimate = self._postgresql() and counted > self.estimate_above
            return counted
        if len(self._first_rows) <= self.per_page:
            return len(self._first_rows)
        if not self._postgresql():
            return queryset.count()
        cap = self.count_exactly_up_to
        counted = queryset.order_by()[: cap + 1].count()
        if counted <= cap:
            return counted
        plan = json.loads(queryset.order_by().explain(format="json"))
        self.count_is_estimate = True
        return max(int(plan[0]["Plan"]["Plan Rows"]), counted)

    @cached_property
    def _first_rows(self):
        return list(self.object_list[: self.per_page + 1])

    def _postgresql(self):
        return connections[self.object_list.db].vendor == "postgresql"

    def page(self, number):
        number = self.validate_number(number)
        if number == 1 and "_first_rows" in self.__dict__:
            return self._get_page(self._first_rows[: self.per_page], number, self)
        return super().page(number)


class _DeferringChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer(*self.model_admin.list_defer)

    def get_results(self, request):
        super().get_results(request)
        # A list that fits on one page is shown whole: from the rows the paginator read
        # to count it, rather than by running its query again.
        first = getattr(self.paginator, "__dict__", {}).get("_first_rows")
        if first is not None and len(first) <= self.list_per_page:
            self.result_list = first


class BigTableAdmin(admin.ModelAdmin):
    """A ModelAdmin whose list runs no full COUNT(*), no facet counts and loads no big column.

    `list_defer` names the columns left out of the list query only; the
    detail page still loads them in its single query.
    """

    list_defer = ()
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj):
        """Django's row checkbox, the same HTML, without rendering a form widget's template
        for every row (a fifth of a 100-row page's time)."""
        label = format_html(_("Select this object for an action - {}"), obj)
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            label,
        )

    def get_changelist(self, request, **kwargs):
        return _DeferringChangeList
