"""Admin for jobs, batches, the DLQ with its attempt history, requeue runs, the audit trail and
API tokens.

Lists over big tables (batches, DLQ entries, attempts) run no full COUNT(*),
no facet or DISTINCT filter queries and load no big column (BigTableAdmin).
What the engine writes (batches, entries, counters) is read-only here; the
DLQ entries, runs and error-group actions live in their own admin_* modules,
imported here so they register with the rest.
"""

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from common.admin import BigTableAdmin, ReadOnlyAdmin, pre, pretty_json

# The admin_* modules register their admins when imported.
from . import admin_entries, admin_errorgroups, admin_runs, tokens  # noqa: F401
from .health import health_status
from .models import ApiToken, Batch, DLQAttempt, Job, JobCounters

# Where every job's DLQ health is shown at once (SPEC §6).
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
    )
    list_filter = ("enabled", "failure_strategy")
    list_select_related = ("counters",)
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
    ]
    live_fieldset = ("Live counters", {"fields": ("dlq_health", "counters_table")})

    def changelist_view(self, request, extra_context=None):
        context = {"dlq_health_url": HEALTH_PAGE, **(extra_context or {})}
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {"dlq_health_url": HEALTH_PAGE, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def get_fieldsets(self, request, obj=None):
        # Counters exist once the job does; the add page has none to show.
        return [*self.fieldsets, self.live_fieldset] if obj else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.live_fieldset[1]["fields"] if obj else ()

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
            (field.verbose_name, display_for_value(getattr(counters, field.name), "-"))
            for field in JobCounters._meta.concrete_fields
            if field.name not in ("id", "job")
        )
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
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
        "created_at",
        "finished_at",
    )
    # A plain related filter lists the jobs; RelatedOnlyFieldListFilter would
    # run SELECT DISTINCT job_id over every batch.
    list_filter = ("status", "job")
    list_select_related = ("job",)
    list_defer = ("records", "held_failures", "pending_indexes", "last_error")
    ordering = ("-created_at",)
    sortable_by = ("id", "created_at")
    fields = (
        "job",
        "status",
        "final_status",
        "record_count",
        "attempts",
        "processed",
        "failed",
        "dlq_added",
        "dlq_rejected",
        "held_count",
        "lost_attempts",
        "last_error_block",
        "idempotency_key",
        "submitted_by",
        "created_at",
        "started_at",
        "finished_at",
        "next_attempt_at",
        "dispatched_at",
        "lease_expires_at",
        "records_preview",
    )
    preview_records = 20

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


@admin.register(DLQAttempt)
class DLQAttemptAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "entry_link", "kind", "outcome", "started_by", "node_id", "at")
    list_defer = ("error_message",)
    list_filter = ("kind", "outcome", "at")
    ordering = ("-id",)
    sortable_by = ("id",)
    fields = ("entry", "kind", "outcome", "started_by", "node_id", "at", "error_block")

    @admin.display(description="DLQ entry")
    def entry_link(self, attempt):
        # By id: joining the entry would drag its payload into the list query.
        url = reverse("admin:dlq_dlqentry_change", args=[attempt.entry_id])
        return format_html('<a href="{}">{}</a>', url, attempt.entry_id)

    @admin.display(description="error message")
    def error_block(self, attempt):
        return pre(attempt.error_message) if attempt.error_message else "-"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "job_names",
        "can_requeue",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("can_requeue", ("revoked_at", admin.EmptyFieldListFilter))
    fields = (
        "name",
        "prefix",
        "jobs",
        "can_requeue",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    filter_horizontal = ("jobs",)
    actions = ["revoke"]
    ordering = ("-created_at",)
    how_to_create = (
        "Tokens are created with: python manage.py create_api_token (it shows the secret "
        "once). Here they are limited, inspected and revoked."
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("jobs")

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"subtitle": self.how_to_create, **(extra_context or {})}
        )

    @admin.display(description="jobs")
    def job_names(self, token):
        return ", ".join(job.name for job in token.jobs.all()) or "every job"

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(tokens.revoke(token) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).")
