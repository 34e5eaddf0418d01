"""Admin for API tokens: created by `create_api_token`, limited, inspected and revoked here."""

from django.contrib import admin

from common.admin import moment_column

from ..models import ApiToken
from ..tokens import revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "job_names",
        "can_requeue",
        "created",
        "last_used",
        "revoked",
    )
    list_filter = ("can_requeue", ("revoked_at", admin.EmptyFieldListFilter))
    fields = (
        "name",
        "prefix",
        "jobs",
        "can_requeue",
        "created_by",
        "created",
        "last_used",
        "revoked",
    )
    readonly_fields = ("prefix", "created_by", "created", "last_used", "revoked")
    created = moment_column("created_at")
    last_used = moment_column("last_used_at", "last used")
    revoked = moment_column("revoked_at")
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
        revoked = sum(revoke(token) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).")
