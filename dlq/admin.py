"""Admin for jobs, batches, the DLQ with its attempt history, and API tokens.

Lists over big tables (batches, DLQ entries, attempts) run no full COUNT(*),
no facet or DISTINCT filter queries and load no big column (BigTableAdmin).
What the engine writes (batches, entries, counters) is read-only here.
"""

import json
import re

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.db.models.functions import Substr
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from errors.admin_bigtable import BigTableAdmin

from . import tokens
from .health import health_status
from .models import ApiToken, Batch, DLQAttempt, DLQEntry, Job, JobCounters

# Enough of a message for a list cell; a message can be megabytes long.
ERROR_EXCERPT_CHARS = 200
# Positive ids that fit a bigint: anything else cannot match, so never reaches the database.
ENTRY_ID = re.compile(r"[0-9]{1,18}")


def pre(text):
    return format_html("<pre>{}</pre>", text)


def pretty_json(value):
    return pre(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes; changing or deleting them by hand would break its counters."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def counters_of(job):
    try:
        return job.counters
    except JobCounters.DoesNotExist:  # a job loaded from a fixture without its counters row
        return JobCounters(job=job)


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

    def get_fieldsets(self, request, obj=None):
        # Counters exist once the job does; the add page has none to show.
        return [*self.fieldsets, self.live_fieldset] if obj else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.live_fieldset[1]["fields"] if obj else ()

    @admin.display(description="processed")
    def records_processed(self, job):
        return counters_of(job).records_processed

    @admin.display(description="failed")
    def records_failed(self, job):
        return counters_of(job).records_failed

    @admin.display(description="failure rate")
    def failure_rate(self, job):
        counters = counters_of(job)
        if not counters.records_processed:
            return "0.0 %"
        return f"{counters.records_failed / counters.records_processed * 100:.1f} %"

    @admin.display(description="DLQ size / max")
    def dlq_size(self, job):
        return f"{counters_of(job).dlq_pending} / {job.dlq_max_size or '∞'}"

    @admin.display(description="DLQ health")
    def dlq_health(self, job):
        return health_status(counters_of(job).dlq_pending, job.dlq_max_size)

    @admin.display(description="counters")
    def counters_table(self, job):
        counters = counters_of(job)
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


class DLQAttemptInline(admin.TabularInline):
    model = DLQAttempt
    fields = ("at", "kind", "started_by", "outcome", "error_message", "node_id")
    readonly_fields = fields
    ordering = ("at",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DLQEntry)
class DLQEntryAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "job", "status", "error", "attempts", "node", "created_at")
    list_select_related = ("job",)
    list_defer = ("payload", "traceback", "error_message")
    list_filter = ("status", "job", "created_at")
    ordering = ("-created_at",)
    sortable_by = ("id", "created_at")
    # Searching a message would scan millions of rows; the box finds an entry by id.
    search_fields = ("=id",)
    search_help_text = "An entry id."
    inlines = [DLQAttemptInline]
    fieldsets = [
        (None, {"fields": ("job", "batch", "index", "status", "attempts", "error_group")}),
        ("Record", {"fields": ("payload_block",)}),
        ("Error", {"fields": ("error_type", "error_block", "traceback_block")}),
        ("Deployment", {"fields": ("node_id", "node_name", "region", "version")}),
        ("Times", {"fields": ("created_at", "last_attempt_at", "resolved_at")}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(error_excerpt=Substr("error_message", 1, ERROR_EXCERPT_CHARS))
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if not ENTRY_ID.fullmatch(term):
            return queryset.none(), False
        return queryset.filter(pk=int(term)), False

    @admin.display(description="error")
    def error(self, entry):
        return Truncator(f"{entry.error_type}: {entry.error_excerpt}").chars(120)

    @admin.display(description="node")
    def node(self, entry):
        return entry.node_name or entry.node_id

    @admin.display(description="record")
    def payload_block(self, entry):
        return pretty_json(entry.payload)

    @admin.display(description="message")
    def error_block(self, entry):
        return pre(entry.error_message)

    @admin.display(description="traceback")
    def traceback_block(self, entry):
        return pre(entry.traceback) if entry.traceback else "-"


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
