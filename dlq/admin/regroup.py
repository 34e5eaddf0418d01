"""Admin for regroup runs: a preview's report (what would merge, split and move), progress, and
the button that applies a preview's rules."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse

from common.admin import BigTableAdmin, ReadOnlyAdmin, pretty_json

from .. import regroup
from ..actors import Actor
from ..models import RegroupRun
from .runs import RunTimes


def can_change_rules(request):
    """Grouping rules are a job's configuration: changing them needs the job's change permission."""
    return request.user.has_perm("dlq.change_job")


@admin.register(RegroupRun)
class RegroupRunAdmin(RunTimes, ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "job",
        "dry_run",
        "status",
        "phase",
        "moved_occurrences",
        "moved_entries",
        "created_by",
        "created",
        "finished",
    )
    list_filter = ("status", "dry_run")
    list_select_related = ("job",)
    list_defer = ("plan", "report", "rules")
    ordering = ("-id",)
    sortable_by = ("id", "created")
    actions = None
    fields = (
        "job",
        "dry_run",
        "status",
        "phase",
        "report_block",
        "rules_block",
        "groups",
        "moved_occurrences",
        "moved_entries",
        "error",
        "created_by",
        "created",
        "started",
        "heartbeat",
        "finished",
    )

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or can_change_rules(request)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_apply"
        view = self.admin_site.admin_view(self.apply_view)
        return [path("<path:object_id>/apply/", view, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        can_apply = (
            run is not None
            and run.dry_run
            and run.status == RegroupRun.Status.FINISHED
            and can_change_rules(request)
        )
        context = {
            "run_active": run is not None and run.status in RegroupRun.ACTIVE,
            "run_button": {
                "url": reverse("admin:dlq_regrouprun_apply", args=[run.pk]),
                "id": "apply-rules",
                "label": "Apply these rules",
            }
            if can_apply
            else None,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def apply_view(self, request, object_id):
        """Apply a finished preview's rules: a new run, which plans again against history now."""
        if not can_change_rules(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        preview = self.get_object(request, unquote(object_id))
        if preview is None or not preview.dry_run:
            raise Http404(f"There is no preview {object_id}.")
        try:
            run = regroup.start_run(
                preview.job,
                preview.rules,
                actor=Actor.from_request(request),
                groups=preview.groups,
            )
        except regroup.InvalidRegroup as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect("admin:dlq_regrouprun_change", preview.pk)
        self.message_user(request, f"Regroup run {run.pk} started.", messages.SUCCESS)
        return redirect("admin:dlq_regrouprun_change", run.pk)

    @admin.display(description="report")
    def report_block(self, run):
        if not run.report:
            return "-"
        return render_to_string("dlq/regroup_report.html", {"run": run, "report": run.report})

    @admin.display(description="rules")
    def rules_block(self, run):
        return pretty_json(run.rules)
