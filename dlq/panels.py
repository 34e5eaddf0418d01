"""The DLQ panel on an error group's page (errors.panels), and the actions it offers.

The panel shows what an operator needs next to the chart: the newest pending
record with its traceback (the offending field in sight), the latest entries,
links to the group's entries, occurrences and requeue runs, and the buttons
to act: Resolve and Ignore post here; Requeue opens the same confirmation
page as "Requeue all matching" on the DLQ list, with a canary filled in, and
Fix opens "Fix and requeue all matching" over the group. Each
button shows only to whoever holds the permission its action checks again.
"""

import json

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Left
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.access import may_view
from errors.models import ErrorGroup, ErrorOccurrence

from . import redaction, triage
from .actors import Actor
from .models import DLQEntry, RequeueRun
from .permissions import REQUEUE, TRIAGE
from .requeue.scope import newest_entry_id

SHOWN = 50
# What Resolve and Ignore may set, and what the message says.
STATUSES = {
    ErrorGroup.Status.RESOLVED: "resolved",
    ErrorGroup.Status.IGNORED: "ignored",
}


def pending_entries(request, group):
    """The panel; records and tracebacks only for whoever may view DLQ entries (fail closed)."""
    if not may_view(request, DLQEntry):
        return render_to_string("dlq/group_panel_closed.html", {"group": group}, request=request)
    pending = DLQEntry.objects.filter(error_group=group, status=DLQEntry.Status.PENDING)
    entries = list(
        pending.select_related("job")
        .only("id", "job__name", "attempts", "node_id", "version", "created_at")
        .annotate(message_head=Left("error_message", 300))
        .order_by("-id")[:SHOWN]
    )
    sample = (
        pending.select_related("job", "traceback_head")
        .only("id", "payload", "traceback", "traceback_head__text", "error_message", "job__config")
        .order_by("-id")
        .first()
        if entries
        else None
    )
    entry_list = reverse("admin:dlq_dlqentry_changelist")
    user = request.user
    may_requeue = user.has_perm(REQUEUE) and bool(entries)
    return render_to_string(
        "dlq/group_panel.html",
        {
            "group": group,
            "entries": entries,
            "sample": sample,
            "sample_payload": json.dumps(
                redaction.shown(sample.payload, sample.job, user), indent=2, sort_keys=True
            )
            if sample
            else "",
            "sample_traceback": redaction.short_paths(sample.full_traceback) if sample else "",
            "list_url": f"{entry_list}?error_group__id__exact={group.pk}&status__exact=pending",
            "occurrences_url": reverse("admin:errors_erroroccurrence_changelist")
            + f"?group__id__exact={group.pk}"
            if may_view(request, ErrorOccurrence)
            else None,
            "runs_url": reverse("admin:dlq_requeuerun_changelist") + f"?error_group={group.pk}"
            if may_view(request, RequeueRun)
            else None,
            "requeue_url": _matching_url("requeue", group) if may_requeue else None,
            "fix_url": _matching_url("fix", group) if may_requeue else None,
            "can_triage": user.has_perm(TRIAGE),
            "statuses": STATUSES,
        },
        request=request,
    )


def batch_entries_url(request, group_id, batch_id):
    """The DLQ list of a batch's entries in a group: where an occurrence's records are (its
    count may stand for a thousand of them); None for whoever may not view entries."""
    if not may_view(request, DLQEntry):
        return None
    entry_list = reverse("admin:dlq_dlqentry_changelist")
    # Whatever their status now: the list shows pending entries only unless told otherwise.
    return (
        f"{entry_list}?batch__id__exact={batch_id}&error_group__id__exact={group_id}"
        "&status__exact=all"
    )


def _matching_url(page, group):
    """The requeue (or fix) page over the group's pending entries, cut at the newest one now."""
    url = reverse(f"admin:dlq_dlqentry_{page}_matching")
    return (
        f"{url}?error_group__id__exact={group.pk}&status__exact=pending"
        f"&max_id={newest_entry_id() or 0}"
    )


@require_POST
@staff_member_required
def set_group_status(request, group_id):
    """Resolve or ignore one group from its page, audited like the admin action."""
    if not request.user.has_perm(TRIAGE):
        raise PermissionDenied
    group = get_object_or_404(ErrorGroup, pk=group_id)
    status = request.POST.get("status", "")
    if status not in STATUSES:
        messages.error(request, f"Unknown status {status!r}; use resolved or ignored.")
        return redirect("errors:group", group.pk)
    changed = triage.set_group_status(
        ErrorGroup.objects.filter(pk=group.pk), status, actor=Actor.from_request(request)
    )
    if changed:
        messages.success(request, f"Error group #{group.pk} marked {STATUSES[status]}.")
    else:
        messages.info(request, f"Error group #{group.pk} was already {STATUSES[status]}.")
    return redirect("errors:group", group.pk)
