"""Admin for API tokens: created by `create_api_token`, limited, inspected and revoked here.

Every change is audited with the token's scope before and after. Widening a
token past its job list (every job) or letting it start requeues needs the
requeue permission, not only change_apitoken: otherwise whoever may edit tokens
could hand a script more than they may do themselves.
"""

from django import forms
from django.contrib import admin

from common.admin import moment_column

from ..actors import Actor
from ..models import ApiToken
from ..tokens import record_change, revoke, scope_of
from .permissions import REQUEUE

# The fields that widen a token when ticked, by their labels in the refusal.
WIDENING = {"all_jobs": "every job", "can_requeue": "can requeue"}


class ApiTokenForm(forms.ModelForm):
    """The token's scope: every job, or a job list (which may be empty: then no job at all)."""

    may_widen = False  # set per request by ApiTokenAdmin.get_form

    class Meta:
        model = ApiToken
        fields = ("name", "all_jobs", "jobs", "can_requeue")

    def clean(self):
        data = super().clean()
        if data.get("all_jobs") and data.get("jobs"):
            raise forms.ValidationError(
                "A token for every job has no job list: untick 'every job' or empty the list."
            )
        if not self.may_widen:
            for field, label in WIDENING.items():
                if data.get(field) and not self.initial.get(field):
                    self.add_error(
                        field,
                        f"Only a user with the requeue permission ({REQUEUE}) may tick "
                        f"'{label}' on a token.",
                    )
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = (
        "prefix",
        "name",
        "job_names",
        "can_requeue",
        "created",
        "last_used",
        "revoked",
    )
    list_filter = ("all_jobs", "can_requeue", ("revoked_at", admin.EmptyFieldListFilter))
    fields = (
        "name",
        "prefix",
        "all_jobs",
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

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)  # a new class on every call
        form.may_widen = request.user.has_perm(REQUEUE)
        return form

    def save_model(self, request, obj, form, change):
        # The scope as stored, read before the form's values are saved over it.
        form.scope_before = scope_of(ApiToken.objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # the job list is saved here
        record_change(form.instance, form.scope_before, actor=Actor.from_request(request))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"subtitle": self.how_to_create, **(extra_context or {})}
        )

    @admin.display(description="jobs")
    def job_names(self, token):
        if token.all_jobs:
            return "every job"
        return ", ".join(job.name for job in token.jobs.all()) or "no job (does nothing)"

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        actor = Actor.from_request(request)
        revoked = sum(revoke(token, actor=actor) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).")
