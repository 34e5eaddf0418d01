"""Admin for the audit trail: every operator action, read-only, linked to its requeue run."""

from django.contrib import admin
from django.utils.text import Truncator

from common.admin import BigTableAdmin, ReadOnlyAdmin, admin_link, pre, pretty_json

from ..models import OperatorAction


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "at",
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
    sortable_by = ("at",)
    actions = None
    fields = (
        "at",
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

    @admin.display(description="target")
    def short_target(self, action):
        return Truncator(action.target).chars(80)

    @admin.display(description="outcome")
    def short_outcome(self, action):
        return Truncator(action.outcome).chars(120)

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
        if action.entry_ids is None:
            return "-"
        return pre(", ".join(str(pk) for pk in action.entry_ids))

    @admin.display(description="details")
    def details_block(self, action):
        return pretty_json(action.details) if action.details else "-"
