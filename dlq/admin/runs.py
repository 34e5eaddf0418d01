"""Admin for requeue runs: did it work, progress, what a run acts on, and cancel.

A run's counts lead to the attempts behind them (resolved, failed again), so
"6 failed" is six links away from nothing: one click to the six.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from common.admin import BigTableAdmin, ReadOnlyAdmin, moment_column, moment_html
from errors.admin import group_page_link

from .. import requeue
from ..actors import Actor
from ..models import DLQAttempt, Job, RequeueRun
from ..requeue import PayloadFix, RequeueScope
from .permissions import OperatorPermissions


class ErrorGroupRunsFilter(admin.SimpleListFilter):
    """The runs over one error group's entries (a group page links here)."""

    title = "error group"
    parameter_name = "error_group"

    def lookups(self, request, model_admin):
        return [(self.value(), f"#{self.value()}")] if self.value() else []

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(filters__error_group=int(self.value()))
        except ValueError:
            return queryset.none()


class RunTimes:
    """A run's times, relative with UTC on hover: requeue and regroup runs share them."""

    created = moment_column("created_at")
    started = moment_column("started_at")
    heartbeat = moment_column("heartbeat_at", "last heartbeat")
    finished = moment_column("finished_at")


# Ids shown on a run's page; the rest are counted.
SHOWN_IDS = 50


@admin.register(RequeueRun)
class RequeueRunAdmin(RunTimes, OperatorPermissions, ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "outcome_badge",
        "total",
        "done",
        "succeeded_link",
        "failed_link",
        "skipped",
        "dry_run",
        "rate_limit",
        "created_by",
        "created",
        "finished",
    )
    list_filter = ("status", "dry_run", ErrorGroupRunsFilter)
    list_defer = ("entry_ids",)
    ordering = ("-id",)
    sortable_by = ("id", "created")
    actions = None
    fields = (
        "outcome_badge",
        "status",
        "progress",
        "stop_reason",
        "selection",
        "dry_run",
        "rate_limit",
        "canary",
        "total",
        "done",
        "succeeded_link",
        "failed_link",
        "skipped",
        "fix_summary",
        "not_fixed_link",
        "pace",
        "waits_until",
        "created_by",
        "created",
        "started",
        "heartbeat",
        "finished",
        "cancel_requested",
        "attempts_link",
    )

    class Media:
        css = {"all": ["errors/pages.css"]}  # the outcome's colours

    def has_view_permission(self, request, obj=None):
        # Whoever may start a run is sent to its page, and may watch it.
        return super().has_view_permission(request, obj) or self.has_requeue_permission(request)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_cancel"
        view = self.admin_site.admin_view(self.cancel_view)
        return [path("<path:object_id>/cancel/", view, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        active = run is not None and run.status in RequeueRun.ACTIVE
        context = {
            "run_active": active,
            "run_button": {
                "url": reverse("admin:dlq_requeuerun_cancel", args=[run.pk]),
                "id": "cancel-run",
                "label": "Cancel the run",
            }
            if active and self.has_requeue_permission(request)
            else None,
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
        if requeue.cancel(run.pk, actor=Actor.from_request(request)):
            self.message_user(request, f"Requeue run {run.pk}: cancel requested.", messages.SUCCESS)
        else:
            self.message_user(request, f"Requeue run {run.pk} had already ended.", messages.WARNING)
        return redirect("admin:dlq_requeuerun_change", run.pk)

    @admin.display(description="progress")
    def progress(self, run):
        reached = min(run.done + run.skipped + run.not_fixed, run.total)
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
        """The scope in words, and what it names as links: the entries it reaches (pending
        or not), the group's page, the job, the batch."""
        scope = RequeueScope.of_run(run)
        text = scope.describe(shown_ids=SHOWN_IDS)
        if scope.entry_ids is not None:
            return text
        job_id = (
            Job.objects.filter(name=scope.job).values_list("pk", flat=True).first()
            if scope.job
            else None
        )
        params = {
            "job__id__exact": job_id,
            "error_group__id__exact": scope.error_group,
            "batch__id__exact": scope.batch,
            # Every status: a run leaves its entries resolved as well as pending.
            "status__exact": "all",
        }
        entries = reverse("admin:dlq_dlqentry_changelist")
        query = urlencode({k: v for k, v in params.items() if v is not None})
        links = [format_html('<a href="{}?{}" id="run-entries">its entries</a>', entries, query)]
        if scope.error_group is not None:
            links.append(group_page_link(scope.error_group, f"error group #{scope.error_group}"))
        if job_id is not None:
            url = reverse("admin:dlq_job_change", args=[job_id])
            links.append(format_html('<a href="{}">job {}</a>', url, scope.job))
        if scope.batch is not None:
            url = reverse("admin:dlq_batch_change", args=[scope.batch])
            links.append(format_html('<a href="{}">batch {}</a>', url, scope.batch))
        return format_html("{} ({})", text, format_html_join(" · ", "{}", ((x,) for x in links)))

    @admin.display(description="canary")
    def canary(self, run):
        if not run.canary_size:
            return "-"
        return (
            f"the first {run.canary_size} entries; stops above "
            f"{run.canary_max_failure_ratio:.0%} failures"
        )

    @admin.display(description="outcome")
    def outcome_badge(self, run):
        return format_html(
            '<span class="velo-status {}" id="run-outcome">{}</span>',
            run.outcome_class,
            run.outcome,
        )

    @admin.display(description="resolved")
    def succeeded_link(self, run):
        return _attempts_link(run, run.succeeded, "succeeded")

    @admin.display(description="failed again")
    def failed_link(self, run):
        return _attempts_link(run, run.failed, "failed")

    @admin.display(description="fix")
    def fix_summary(self, run):
        fix = PayloadFix.from_json(run.fix)
        return fix.describe() if fix else "-"

    @admin.display(description="not fixed (left as they were)")
    def not_fixed_link(self, run):
        return _attempts_link(run, run.not_fixed, DLQAttempt.Outcome.NOT_FIXED) if run.fix else "-"

    @admin.display(description="duration and rate")
    def pace(self, run):
        if run.duration is None:
            return "-"
        seconds = run.duration.total_seconds()
        rate = f", {run.done / seconds:,.1f} entries/s" if seconds > 0 and run.done else ""
        return f"{seconds:,.1f} s{rate}"

    @admin.display(description="next chunk due")
    def waits_until(self, run):
        """A paced run between chunks: queued, on no worker, until then."""
        if run.status != RequeueRun.Status.QUEUED or run.next_attempt_at is None:
            return "-"
        return moment_html(run.next_attempt_at)

    @admin.display(description="attempts")
    def attempts_link(self, run):
        return _attempts_link(run, None, None, "This run’s attempts")


def _attempts_link(run, count, outcome, label=None):
    """The run's attempts (of one outcome), or the bare count when there are none to show."""
    if count == 0:
        return "0"
    query = f"requeue_run__id__exact={run.pk}"
    if outcome:
        query += f"&outcome__exact={outcome}"
    url = reverse("admin:dlq_dlqattempt_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, query, label or count)


def run_started_message(run):
    if run.dry_run:
        return f"Dry run {run.pk}: {run.total} entries would be requeued; nothing was changed."
    return f"Requeue run {run.pk} started for {run.total} pending entries."


def run_started_link(run):
    """run_started_message with a link to the run's page, for a page that stays where it was."""
    url = reverse("admin:dlq_requeuerun_change", args=[run.pk])
    return format_html(
        '{} <a href="{}" id="started-run">Follow its progress</a>.', run_started_message(run), url
    )


def run_held_message(exc):
    """A refused run (requeue.ScopeHeld): why, with a link to the live run that holds it."""
    url = reverse("admin:dlq_requeuerun_change", args=[exc.run.pk])
    return format_html(
        'Not started: {}. <a href="{}" id="holding-run">Open requeue run {}</a>.',
        str(exc),
        url,
        exc.run.pk,
    )
