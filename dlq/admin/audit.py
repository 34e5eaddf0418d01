"""Admin for the audit trail: every operator action, read-only, linked to its requeue run."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from common.admin import BigTableAdmin, ReadOnlyAdmin, admin_link, cut, moment_column, pretty_json
from errors.admin import group_page_link

from ..models import OperatorAction


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "when",
        "username",
        "via",
        "action",
        "short_target",
        "count",
        "dry_run",
        "short_outcome",
    )
    list_filter = ("action",)
    list_defer = ("filters", "entry_ids", "details")
    ordering = ("-at",)
    sortable_by = ("when",)
    actions = None
    fields = (
        "when",
        "username",
        "via",
        "action",
        "target",
        "count",
        "dry_run",
        "outcome",
        "run_link",
        "filters_block",
        "entry_ids_block",
        "details_block",
    )

    when = moment_column("at", "when")

    @admin.display(description="target")
    def short_target(self, action):
        return cut(action.target)

    @admin.display(description="outcome")
    def short_outcome(self, action):
        return cut(action.outcome)

    @admin.display(description="requeue run")
    def run_link(self, action):
        if action.requeue_run_id is None:
            return "-"
        return admin_link(
            "admin:dlq_requeuerun_change", action.requeue_run_id, action.requeue_run_id
        )

    @admin.display(description="filters")
    def filters_block(self, action):
        return pretty_json(action.filters) if action.filters else "-"

    @admin.display(description="entry ids")
    def entry_ids_block(self, action):
        """Each entry acted on, a link to its page (the first thousand are kept)."""
        if action.entry_ids is None:
            return "-"
        return format_html_join(
            ", ",
            "{}",
            ((admin_link("admin:dlq_dlqentry_change", pk, pk),) for pk in action.entry_ids),
        )

    @admin.display(description="details")
    def details_block(self, action):
        if not action.details:
            return "-"
        groups = action.details.get("error_groups") or []
        if "into" in action.details:  # a merge
            groups = [action.details["into"]]
        if not groups:
            return pretty_json(action.details)
        links = format_html_join(", ", "{}", ((group_page_link(g, f"group #{g}"),) for g in groups))
        return format_html("{}{}", links, pretty_json(action.details))
