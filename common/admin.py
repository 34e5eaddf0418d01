"""The admin kit both apps build on: read-only admins, changelists that stay fast on tables
with millions of rows, escaped display blocks, one-line text cells and relative times."""

import json

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

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


class _DeferringChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer(*self.model_admin.list_defer)


class BigTableAdmin(admin.ModelAdmin):
    """A ModelAdmin whose list runs no full COUNT(*), no facet counts and loads no big column.

    `list_defer` names the columns left out of the list query only; the
    detail page still loads them in its single query.
    """

    list_defer = ()
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return _DeferringChangeList
