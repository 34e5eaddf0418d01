"""Admin for jobs (their configuration, live counters and DLQ health) and their batches."""

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.utils.html import format_html, format_html_join

from common.admin import BigTableAdmin, ReadOnlyAdmin, pre, pretty_json

from ..health import health_status
from ..models import Batch, Job, JobCounters

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
