"""Admin for jobs (their configuration, live counters and DLQ health) and their batches."""

import datetime
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import display_for_value, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from common.admin import BigTableAdmin, ReadOnlyAdmin, moment_column, pre, pretty_json
from common.moments import moment_html

from .. import pause, regroup
from ..actors import Actor
from ..health import health_status
from ..models import Batch, Job, JobCounters
from .forms import GroupingRulesForm
from .regroup import can_change_rules

# Where every job's DLQ health is shown at once (a URL of the product contract).
HEALTH_PAGE = "/dlq/health/"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "processor",
        "failure_strategy",
        "enabled",
        "records_processed",
        "records_failed",
        "failure_rate",
        "dlq_size",
        "dlq_health",
        "paused",
    )
    list_filter = ("enabled", "failure_strategy")
    list_select_related = ("counters",)
    actions = ["pause", "resume"]
    search_fields = ("name",)
    ordering = ("name",)
    fieldsets = [
        (None, {"fields": ("name", "processor", "config", "failure_strategy", "enabled")}),
        (
            "Retries",
            {
                "fields": (
                    "max_retries",
                    "retry_initial_delay",
                    "retry_multiplier",
                    "retry_max_delay",
                )
            },
        ),
        (
            "Dead letter queue",
            {"fields": ("dlq_enabled", "dlq_max_size", "dlq_full_policy", "dlq_retention_days")},
        ),
        ("Time limits", {"fields": ("record_timeout", "batch_timeout")}),
        ("Health", {"fields": ("failure_rate_warning_percent",)}),
    ]
    live_fieldset = ("Live counters", {"fields": ("pause_state", "dlq_health", "counters_table")})
    grouping_fieldset = ("Grouping rules", {"fields": ("grouping_block",)})

    def changelist_view(self, request, extra_context=None):
        context = {"dlq_health_url": HEALTH_PAGE, **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_grouping"
        view = self.admin_site.admin_view(self.grouping_view)
        return [path("<path:object_id>/grouping/", view, name=name), *super().get_urls()]

    def grouping_view(self, request, object_id):
        """New grouping rules for a job: checked, then previewed by a regroup run (a dry run)."""
        if not can_change_rules(request):
            raise PermissionDenied
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404(f"There is no job {object_id}.")
        form = GroupingRulesForm(
            request.POST if request.method == "POST" else None,
            initial={"rules": json.dumps(job.grouping, indent=2)},
        )
        if request.method == "POST" and form.is_valid():
            try:
                run = regroup.start_run(
                    job, form.cleaned_data["rules"], actor=Actor.from_request(request), dry_run=True
                )
            except regroup.InvalidRegroup as exc:
                form.add_error("rules", str(exc))
            else:
                self.message_user(
                    request,
                    f"Previewing the rules (run {run.pk}); nothing changes until you apply.",
                    messages.SUCCESS,
                )
                return redirect("admin:dlq_regrouprun_change", run.pk)
        return TemplateResponse(
            request,
            "admin/dlq/job/grouping.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": job,
                "title": f"Grouping rules of {job.name}",
                "form": form,
                "runs": job.regroup_runs.order_by("-pk")[:10],
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {
            "dlq_health_url": HEALTH_PAGE,
            "can_change_rules": can_change_rules(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def get_fieldsets(self, request, obj=None):
        # Counters exist once the job does; the add page has none to show.
        if obj is None:
            return self.fieldsets
        return [*self.fieldsets, self.grouping_fieldset, self.live_fieldset]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*self.live_fieldset[1]["fields"], *self.grouping_fieldset[1]["fields"])

    @admin.action(
        description="Pause the selected jobs (submissions kept, none processed)",
        permissions=["change"],
    )
    def pause(self, request, queryset):
        actor = Actor.from_request(request)
        paused = [job.name for job in queryset if pause.pause(job, actor)]
        self.message_user(
            request,
            f"Paused {', '.join(paused)}: their batches wait until they resume."
            if paused
            else "No job changed: the selected jobs were paused already.",
            messages.SUCCESS if paused else messages.WARNING,
        )

    @admin.action(description="Resume the selected jobs…", permissions=["change"])
    def resume(self, request, queryset):
        """Asks the pace first, on a page of its own; the page posts the action back."""
        jobs = list(queryset.filter(paused_at__isnull=False))
        form = ResumeForm(request.POST if "rate" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor, rate = Actor.from_request(request), form.cleaned_data["rate"]
            resumed = [job.name for job in jobs if pause.resume(job, actor, rate)]
            self.message_user(
                request,
                f"Resumed {', '.join(resumed) or 'no job'}: what waited is sent oldest first, "
                + (f"{rate:g} batches a second." if rate else "with no limit."),
                messages.SUCCESS,
            )
            return None
        if not jobs:
            self.message_user(request, "None of the selected jobs is paused.", messages.WARNING)
            return None
        waiting = pause.waiting_batches(jobs)
        return TemplateResponse(
            request,
            "admin/dlq/job/resume.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Resume paused jobs",
                "jobs": [(job, waiting.get(job.pk, 0)) for job in jobs],
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.display(description="paused", boolean=True)
    def paused(self, job):
        return job.paused_at is not None

    @admin.display(description="processing")
    def pause_state(self, job):
        """Paused or resuming (the actions on the job list change it), else running."""
        if job.paused_at is not None:
            return format_html("paused {}", moment_html(job.paused_at))
        if job.release_started_at is not None:
            pace = f"{job.release_rate:g} batches a second" if job.release_rate else "no limit"
            return f"resuming: sending what waited, oldest first, {pace}"
        return "running"

    @admin.display(description="rules in force")
    def grouping_block(self, job):
        return pretty_json(job.grouping) if job.grouping else "None: the built-in rules only."

    @admin.display(description="processed")
    def records_processed(self, job):
        return job.counters_or_zeros().records_processed

    @admin.display(description="failed")
    def records_failed(self, job):
        return job.counters_or_zeros().records_failed

    @admin.display(description="failure rate")
    def failure_rate(self, job):
        return f"{job.counters_or_zeros().failure_rate_percent:.1f} %"

    @admin.display(description="DLQ size / max")
    def dlq_size(self, job):
        return f"{job.counters_or_zeros().dlq_pending} / {job.dlq_max_size or '∞'}"

    @admin.display(description="DLQ health")
    def dlq_health(self, job):
        return health_status(job.counters_or_zeros().dlq_pending, job.dlq_max_size)

    @admin.display(description="counters")
    def counters_table(self, job):
        counters = job.counters_or_zeros()
        rows = (
            (field.verbose_name, _counter_value(getattr(counters, field.name)))
            for field in JobCounters._meta.concrete_fields
            if field.name not in ("id", "job")
        )
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )


class ResumeForm(forms.Form):
    rate = forms.FloatField(
        required=False,
        min_value=pause.MIN_RATE,
        max_value=pause.MAX_RATE,
        label="Batches a second",
        help_text="Empty: no limit (as fast as the dispatcher sends).",
    )


def _counter_value(value):
    return (
        moment_html(value)
        if isinstance(value, datetime.datetime)
        else display_for_value(value, "-")
    )


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "job",
        "status",
        "record_count",
        "processed",
        "failed",
        "dlq_added",
        "attempts",
        "created",
        "finished",
    )
    # A plain related filter lists the jobs; RelatedOnlyFieldListFilter would
    # run SELECT DISTINCT job_id over every batch.
    list_filter = ("status", "job")
    list_select_related = ("job",)
    list_defer = ("records", "held_failures", "pending_indexes", "last_error")
    ordering = ("-created_at",)
    sortable_by = ("id", "created")
    fields = (
        "job",
        "status",
        "final_status",
        "record_count",
        "attempts",
        "processed",
        "failed",
        "dlq_added",
        "entries_link",
        "dlq_rejected",
        "held_count",
        "lost_attempts",
        "last_error_block",
        "idempotency_key",
        "submitted_by",
        "created",
        "started",
        "finished",
        "next_attempt",
        "dispatched",
        "lease_expires",
        "records_preview",
    )
    preview_records = 20
    created = moment_column("created_at")
    started = moment_column("started_at")
    finished = moment_column("finished_at")
    next_attempt = moment_column("next_attempt_at", "next attempt due")
    dispatched = moment_column("dispatched_at")
    lease_expires = moment_column("lease_expires_at", "lease expires")

    @admin.display(description="its DLQ entries")
    def entries_link(self, batch):
        if not batch.dlq_added:
            return "-"
        url = reverse("admin:dlq_dlqentry_changelist")
        return format_html(
            # Every status: the count is of all the entries the batch left.
            '<a href="{}?batch__id__exact={}&amp;status__exact=all" id="batch-entries">'
            "its {} DLQ entries</a>",
            url,
            batch.pk,
            batch.dlq_added,
        )

    @admin.display(description="failures held for DLQ room")
    def held_count(self, batch):
        return len(batch.held_failures or ())

    @admin.display(description="last error")
    def last_error_block(self, batch):
        return pre(batch.last_error) if batch.last_error else "-"

    @admin.display(description="records")
    def records_preview(self, batch):
        shown = batch.records[: self.preview_records]
        note = (
            f"The first {len(shown)} of {batch.record_count}."
            if len(shown) < len(batch.records)
            else ""
        )
        return format_html("{}{}", note, pretty_json(shown))
