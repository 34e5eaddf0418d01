"""The DLQ panel on an error group's page (errors.panels): its pending entries, newest first."""

from django.db.models.functions import Left
from django.template.loader import render_to_string
from django.urls import reverse

from .models import DLQEntry

SHOWN = 50
# Counting stops here: an exact count of a million-entry group is a long index
# scan for a number nobody reads digit by digit.
COUNT_CAP = 10_000


def pending_entries(request, group):
    pending = DLQEntry.objects.filter(error_group=group, status=DLQEntry.Status.PENDING)
    entries = list(
        pending.select_related("job")
        .only("id", "job__name", "attempts", "node_id", "version", "created_at")
        .annotate(message_head=Left("error_message", 300))
        .order_by("-id")[:SHOWN]
    )
    count = len(entries)
    if count == SHOWN:
        count = pending.order_by().values("id")[: COUNT_CAP + 1].count()
    changelist = reverse("admin:dlq_dlqentry_changelist")
    return render_to_string(
        "dlq/group_panel.html",
        {
            "entries": entries,
            "count": min(count, COUNT_CAP),
            "capped": count > COUNT_CAP,
            "list_url": f"{changelist}?error_group__id__exact={group.pk}&status__exact=pending",
        },
        request=request,
    )
