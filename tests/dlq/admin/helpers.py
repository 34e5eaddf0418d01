"""What the admin tests share: the constants of hostile content, and posting actions."""

from dlq.models import (
    DLQEntry,
    OperatorAction,
    RequeueRun,
)
from dlq.requeue import execute_run

LIST = "/admin/dlq/dlqentry/"
STRICT = {
    "type": "object",
    "required": ["symbol", "price"],
    "properties": {"symbol": {"type": "string"}, "price": {"type": "number"}},
}
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
ODD = "Ã©â€™\u202e\ufffd"
Action = OperatorAction.Action
Status = DLQEntry.Status
HOSTILE_MESSAGE = f"{SCRIPT} \"quoted\" 'single' {ODD} " + "y" * 5000
HOSTILE_PAYLOAD = {"note": SCRIPT, "quotes": "\"'", "long": "x" * 5000, "odd": ODD}
# (query, rows listed once 60 more entries of the same job and group have arrived)
LIST_QUERIES = [
    ({}, 61),
    (
        {
            "job__id__exact": "{job}",
            "status__exact": "pending",
            "error_group__id__exact": "{group}",
        },
        61,
    ),
    ({"job__id__exact": "{job}", "error_group__id__exact": "{group}", "created": "24h"}, 61),
    ({"q": "symbol"}, 61),
    ({"q": "batch:{batch}"}, 60),
    ({"q": "{entry}"}, 1),
]


def post_action(client, action, ids, query=""):
    return client.post(
        LIST + query, {"action": action, "_selected_action": [e.pk for e in ids]}, follow=True
    )


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def statuses(entries):
    return [DLQEntry.objects.get(pk=e.pk).status for e in entries]


def matching_url(response):
    url = response.context.get("requeue_matching_url")
    assert url, response.context.get("requeue_matching_note")
    return url


def post_group_action(client, action, groups):
    return client.post(
        "/admin/errors/errorgroup/",
        {"action": action, "_selected_action": [g.pk for g in groups]},
        follow=True,
    )


def worked(client, response):
    """The entry page a one-entry requeue led to, once a worker has run it: the page
    follows the run (`?requeue_run=`) until its result arrives, then says it."""
    following = response.redirect_chain[-1][0]
    assert "requeue_run=" in following, following
    assert 'id="requeue-waiting"' in response.content.decode()  # no worker yet: it waits
    [run] = RequeueRun.objects.filter(status="queued", entry_ids__isnull=False)
    execute_run(run.pk)  # what the worker does with it
    return client.get(following, follow=True)
