"""What the admin tests share: the constants of hostile content, and posting actions."""

from datetime import UTC
from html.parser import HTMLParser

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


class _HistoryTable(HTMLParser):
    """The rows of an entry page's attempt history table, as an operator reads them."""

    def __init__(self):
        super().__init__()
        self.rows, self._depth, self._cell = [], 0, None

    def handle_starttag(self, tag, attrs):
        if tag == "div" and ("id", "attempt-history") in attrs:
            self._depth = 1
        elif self._depth and tag == "div":
            self._depth += 1
        elif self._depth and tag == "tr":
            self.rows.append({"cells": [], "at": None})
        elif self._depth and tag == "td":
            self._cell = []
        elif self._depth and tag == "time" and self.rows[-1]["at"] is None:
            self.rows[-1]["at"] = dict(attrs)["datetime"]

    def handle_endtag(self, tag):
        if self._depth and tag == "div":
            self._depth -= 1
        elif self._depth and tag == "td":
            self.rows[-1]["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def attempt_history(page):
    """An entry page's attempt history: [(when, kind, started by, outcome, error message,
    payload change, node id)] oldest first, `when` the moment's ISO datetime (UTC)."""
    table = _HistoryTable()
    table.feed(page)
    return [(row["at"], *row["cells"][1:]) for row in table.rows if row["cells"]]


def original_attempt_row(entry, message, node_id):
    """How `attempt_history` reads the row of the entry's original attempt."""
    return (
        entry.created_at.astimezone(UTC).isoformat(),
        "Original processing",
        "worker",
        "Failed",
        message,
        "-",
        node_id,
    )
