"""Admin for the error history: groups, their occurrences and the stored totals, all read-only."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from common.admin import BigTableAdmin, ReadOnlyAdmin, cut, moment_column, pre

from . import panels
from .models import ErrorGroup, ErrorOccurrence, ErrorTotal


def group_page_link(group_id, text):
    """A link to an error group's page: /errors/<id>/ by contract, whoever serves it, so no
    reverse() per row of a list."""
    return format_html('<a href="/errors/{}/">{}</a>', group_id, text)


class JobNameFilter(admin.SimpleListFilter):
    """The jobs that have errors, from the per-job totals: one row a job, not a scan of groups."""

    title = "job"
    parameter_name = "job_name"

    def lookups(self, request, model_admin):
        names = ErrorTotal.objects.order_by("job_name").values_list("job_name", flat=True)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(job_name=self.value()) if self.value() else queryset


@admin.register(ErrorGroup)
class ErrorGroupAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "short_template",
        "job_name",
        "short_error_type",
        "count",
        "dlq_pending",
        "seen_first",
        "seen_last",
        "status",
    )
    list_display_links = ("id", "short_template")
    list_filter = ("status", JobNameFilter)
    # Groups are few next to entries (one per kind of failure): a scan of templates is cheap.
    search_fields = ("template",)
    search_help_text = "Finds groups whose template contains the text."
    list_defer = ("last_message",)
    ordering = ("-last_seen",)
    sortable_by = ("id", "count", "dlq_pending", "seen_first", "seen_last")
    fields = (
        "job_name",
        "error_type",
        "template_block",
        "last_message_block",
        "count",
        "dlq_pending",
        "seen_first",
        "seen_last",
        "status",
        "regressed",
        "fingerprint",
        "grouping_version",
        "history",
        "occurrences",
    )

    seen_first = moment_column("first_seen", "first seen")
    seen_last = moment_column("last_seen", "last seen")
    regressed = moment_column("regressed_at")

    @admin.display(description="template")
    def short_template(self, group):
        return cut(group.template)

    @admin.display(description="error type")
    def short_error_type(self, group):
        return cut(group.error_type, minor=True)

    @admin.display(description="template")
    def template_block(self, group):
        return pre(group.template)

    @admin.display(description="last message")
    def last_message_block(self, group):
        return pre(group.last_message)

    @admin.display(description="error history")
    def history(self, group):
        return group_page_link(group.pk, "Timeline, occurrences and places")

    @admin.display(description="occurrences")
    def occurrences(self, group):
        url = reverse("admin:errors_erroroccurrence_changelist")
        return format_html('<a href="{}?group__id__exact={}">Every occurrence</a>', url, group.pk)


@admin.register(ErrorOccurrence)
class ErrorOccurrenceAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("occurred", "job", "group_link", "failures", "node", "region", "version")
    list_select_related = ("group",)
    # The group is joined only for its error type: leave its long texts behind.
    list_defer = ("message", "group__template", "group__last_message")
    list_filter = ("occurred_at",)
    # No actions, so no checkbox column: its label is str(occurrence), which
    # reads the deferred message once per row. History is purged, not deleted.
    actions = None
    ordering = ("-occurred_at",)
    sortable_by = ("occurred",)
    fields = (
        "occurred",
        "job_name",
        "group",
        "message_block",
        "failures",
        "batch_id",
        "node_id",
        "node_name",
        "region",
        "version",
    )

    occurred = moment_column("occurred_at", "when")

    @admin.display(description="job")
    def job(self, occurrence):
        """The job's name now (its group's: kept on rename), from the join the list makes."""
        return occurrence.group.job_name

    @admin.display(description="group")
    def group_link(self, occurrence):
        url = reverse("admin:errors_errorgroup_change", args=[occurrence.group_id])
        return format_html(
            '<a href="{}">#{} {}</a>', url, occurrence.group_id, occurrence.group.error_type
        )

    @admin.display(description="failures")
    def failures(self, occurrence):
        """The failures the row counts (one batch attempt's with one message on one node)."""
        return f"×{occurrence.count}"

    def get_fields(self, request, obj=None):
        # The link to the row's records depends on who asks (errors.panels.entries_url).
        return [*super().get_fields(request, obj), _entries_field(request)]

    @admin.display(description="node")
    def node(self, occurrence):
        return occurrence.node_name or occurrence.node_id

    @admin.display(description="message")
    def message_block(self, occurrence):
        return pre(occurrence.message)


def _entries_field(request):
    """A read-only field linking an occurrence to its batch's DLQ entries in its group."""

    @admin.display(description="DLQ entries")
    def dlq_entries(occurrence):
        url = panels.entries_url(request, occurrence.group_id, occurrence.batch_id)
        return (
            format_html('<a href="{}">The batch\'s entries in this group</a>', url) if url else "-"
        )

    return dlq_entries


@admin.register(ErrorTotal)
class ErrorTotalAdmin(ReadOnlyAdmin):
    list_display = ("job_name", "occurrences")
    ordering = ("job_name",)
