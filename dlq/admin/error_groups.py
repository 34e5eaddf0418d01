"""The error groups' admin, with the actions that act through the DLQ's services.

`errors` may not import `dlq`, so its ErrorGroupAdmin shows the groups and
this subclass, registered in its place, adds resolve, ignore and
requeue_group and the link to a group's pending entries.
"""

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from errors.admin import ErrorGroupAdmin as BaseErrorGroupAdmin
from errors.models import ErrorGroup

from .. import panels, regroup, requeue, triage
from ..actors import Actor
from ..models import DLQEntry
from .permissions import OperatorPermissions
from .runs import run_held_message, run_started_message


class ErrorGroupAdmin(OperatorPermissions, BaseErrorGroupAdmin):
    actions = ["resolve", "ignore", "requeue_group", "merge_groups", "unmerge_group"]
    fields = (*BaseErrorGroupAdmin.fields, "pending_entries")
    change_form_template = "admin/errors/errorgroup/change_form.html"

    class Media:
        css = {"all": ["errors/pages.css"]}  # the panel's layout

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The group's page acts as /errors/<id>/ does: the same panel, the same buttons
        (rendered from the group the page already loaded)."""
        context["group_panel"] = panels.pending_entries(request, obj) if obj else ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Mark the selected groups resolved", permissions=["triage"])
    def resolve(self, request, queryset):
        changed = triage.set_group_status(
            queryset, ErrorGroup.Status.RESOLVED, actor=Actor.from_request(request)
        )
        self.message_user(request, f"{changed} error groups marked resolved.", messages.SUCCESS)

    @admin.action(description="Ignore the selected groups", permissions=["triage"])
    def ignore(self, request, queryset):
        changed = triage.set_group_status(
            queryset, ErrorGroup.Status.IGNORED, actor=Actor.from_request(request)
        )
        self.message_user(request, f"{changed} error groups ignored.", messages.SUCCESS)

    @admin.action(
        description="Requeue every pending DLQ entry of the selected groups",
        permissions=["requeue"],
    )
    def requeue_group(self, request, queryset):
        """One run per group, cut at today's newest entry: later arrivals are not swept in."""
        group_ids = queryset.order_by("pk").values_list("pk", flat=True)[: requeue.MAX_GROUPS + 1]
        held = []
        try:
            runs = requeue.requeue_groups(group_ids, Actor.from_request(request), held=held)
        except requeue.InvalidRequeue as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        for refusal in held:
            self.message_user(request, run_held_message(refusal), messages.ERROR)
        if held and not runs:
            return None
        if not runs:
            self.message_user(
                request, "The selected groups have no pending DLQ entries.", messages.WARNING
            )
            return None
        if len(runs) == 1:
            self.message_user(request, run_started_message(runs[0]), messages.SUCCESS)
            return redirect("admin:dlq_requeuerun_change", runs[0].pk)
        links = format_html_join(
            ", ",
            '<a href="{}">run {}</a> ({} entries)',
            (
                (reverse("admin:dlq_requeuerun_change", args=[run.pk]), run.pk, run.total)
                for run in runs
            ),
        )
        self.message_user(
            request, format_html("Started {} requeue runs: {}.", len(runs), links), messages.SUCCESS
        )
        return None

    @admin.action(description="Merge the selected groups into one", permissions=["triage"])
    def merge_groups(self, request, queryset):
        """The group most errors were counted in keeps its id; the others' history follows."""
        try:
            into = regroup.merge_groups(queryset, actor=Actor.from_request(request))
        except regroup.InvalidRegroup as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        self.message_user(request, f"Merged into group {into.pk}.", messages.SUCCESS)
        return redirect("admin:errors_errorgroup_change", into.pk)

    @admin.action(
        description="Split the selected group back into its parts (by template)",
        permissions=["triage"],
    )
    def unmerge_group(self, request, queryset):
        groups = list(queryset[:2])
        if len(groups) != 1:
            self.message_user(request, "Select one group to split.", messages.ERROR)
            return None
        try:
            run = regroup.unmerge(groups[0], actor=Actor.from_request(request))
        except regroup.InvalidRegroup as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        self.message_user(request, f"Splitting group {groups[0].pk} (regroup run {run.pk}).")
        return redirect("admin:dlq_regrouprun_change", run.pk)

    @admin.display(description="DLQ entries")
    def pending_entries(self, group):
        pending = DLQEntry.objects.filter(error_group=group, status=DLQEntry.Status.PENDING)
        url = reverse("admin:dlq_dlqentry_changelist")
        return format_html(
            '<a href="{}?error_group__id__exact={}&amp;status__exact=pending">'
            "{} pending entries</a> · "
            '<a href="{}?error_group__id__exact={}">every entry</a>',
            url,
            group.pk,
            pending.count(),
            url,
            group.pk,
        )


admin.site.unregister(ErrorGroup)
admin.site.register(ErrorGroup, ErrorGroupAdmin)
