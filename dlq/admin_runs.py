"""Admin for requeue runs (progress and cancel) and the operator audit trail, both read-only."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from common.admin import BigTableAdmin, ReadOnlyAdmin, admin_link, pre, pretty_json

from . import requeue
from .models import OperatorAction, RequeueRun

# Ids shown on a run's page; the rest are counted.
SHOWN_IDS = 50


@admin.register(RequeueRun)
class RequeueRunAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "status",
        "total",
        "done",
        "succeeded",
        "failed",
        "skipped",
        "dry_run",
        "rate_limit",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "dry_run")
    list_defer = ("entry_ids",)
    ordering = ("-id",)
    sortable_by = ("id", "created_at")
    actions = None
    fields = (
        "status",
        "progress",
        "stop_reason",
        "selection",
        "dry_run",
        "rate_limit",
        "canary",
        "total",
        "done",
        "succeeded",
        "failed",
        "skipped",
        "created_by",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "cancel_requested",
        "attempts_link",
    )

    def has_view_permission(self, request, obj=None):
        # Whoever may start a run is sent to its page, and may watch it.
        return super().has_view_permission(request, obj) or self.has_requeue_permission(request)

    def has_requeue_permission(self, request):
        return request.user.has_perm("dlq.requeue_dlqentry")

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_cancel"
        view = self.admin_site.admin_view(self.cancel_view)
        return [path("<path:object_id>/cancel/", view, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        active = run is not None and run.status in RequeueRun.ACTIVE
        context = {
            "run_active": active,
            "can_cancel": active and self.has_requeue_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def cancel_view(self, request, object_id):
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404(f"There is no requeue run {object_id}.")
        if requeue.cancel(run.pk, user=request.user):
            self.message_user(request, f"Requeue run {run.pk}: cancel requested.", messages.SUCCESS)
        else:
            self.message_user(request, f"Requeue run {run.pk} had already ended.", messages.WARNING)
        return redirect("admin:dlq_requeuerun_change", run.pk)

    @admin.display(description="progress")
    def progress(self, run):
        reached = min(run.done + run.skipped, run.total)
        percent = reached * 100 // run.total if run.total else 100
        return format_html(
            '<progress value="{}" max="{}" style="width: 20em">{} %</progress> {} of {} ({} %)',
            reached,
            run.total or 1,
            percent,
            reached,
            run.total,
            percent,
        )

    @admin.display(description="acts on")
    def selection(self, run):
        if run.entry_ids is not None:
            shown = ", ".join(str(pk) for pk in run.entry_ids[:SHOWN_IDS])
            more = (
                f" and {len(run.entry_ids) - SHOWN_IDS} more"
                if len(run.entry_ids) > SHOWN_IDS
                else ""
            )
            return f"pending entries among ids {shown}{more}"
        words = ", ".join(f"{key} = {value}" for key, value in sorted(run.filters.items()))
        cut = f", id ≤ {run.max_id}" if run.max_id is not None else ""
        return f"pending entries where {words}{cut}"

    @admin.display(description="canary")
    def canary(self, run):
        if not run.canary_size:
            return "-"
        return (
            f"the first {run.canary_size} entries; stops above "
            f"{run.canary_max_failure_ratio:.0%} failures"
        )

    @admin.display(description="attempts")
    def attempts_link(self, run):
        url = reverse("admin:dlq_dlqattempt_changelist")
        return format_html(
            '<a href="{}?requeue_run__id__exact={}">This run’s attempts</a>', url, run.pk
        )


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
