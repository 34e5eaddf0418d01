"""The DLQ list (fast and bounded at any size), an entry's page, and the list's actions."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from dlq import redaction, requeue
from dlq.admin import export
from dlq.models import DLQEntry, OperatorAction, RequeueRun
from tests.conftest import BAD
from tests.dlq.factories import captured_tracebacks, relax

# (query, rows listed once 60 more entries of the same job and group have arrived)
from .helpers import (
    ESCAPED_SCRIPT,
    HOSTILE_MESSAGE,
    HOSTILE_PAYLOAD,
    LIST,
    LIST_QUERIES,
    ODD,
    SCRIPT,
    STRICT,
    Action,
    Status,
    attempt_history,
    messages_of,
    original_attempt_row,
    post_action,
    statuses,
)


def test_requeue_selected_starts_a_background_run_and_links_its_page(admin_client_, job, fail):
    entries = fail(3)
    response = post_action(admin_client_, "requeue_selected", entries[:2])
    run = RequeueRun.objects.get()
    assert f'<a href="/admin/dlq/requeuerun/{run.pk}/change/" id="started-run">' in (
        response.content.decode()
    )
    assert (run.status, run.total, run.entry_ids) == ("queued", 2, [e.pk for e in entries[:2]])
    audit = OperatorAction.objects.get(action=Action.REQUEUE)
    assert (audit.requeue_run, audit.count, audit.username) == (run, 2, admin_client_.user.username)

    relax(job)
    requeue.execute_run(run.pk)  # what the worker would do
    assert statuses(entries) == [Status.RESOLVED, Status.RESOLVED, Status.PENDING]
    content = admin_client_.get(f"/admin/dlq/requeuerun/{run.pk}/change/").content.decode()
    assert '<progress value="2" max="2"' in content
    assert 'http-equiv="refresh"' not in content  # finished: no more refreshing
    attempts = admin_client_.get("/admin/dlq/dlqattempt/", {"requeue_run__id__exact": run.pk})
    assert {a.entry_id for a in attempts.context["cl"].result_list} == {e.pk for e in entries[:2]}


def test_discard_selected_discards_the_pending_ones_and_records_it(admin_client_, fail):
    entries = fail(3)
    response = post_action(admin_client_, "discard_selected", entries[:2])
    assert "Discarded 2 pending entries." in messages_of(response)
    assert statuses(entries) == [Status.DISCARDED, Status.DISCARDED, Status.PENDING]
    audit = OperatorAction.objects.get(action=Action.DISCARD)
    assert audit.count == 2
    assert str(entries[0].pk) in audit.target


def test_export_jsonl_streams_valid_json_lines_and_records_the_export(admin_client_, fail):
    entries = fail(3)
    response = admin_client_.post(
        LIST, {"action": "export_jsonl", "_selected_action": [e.pk for e in entries[:2]]}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert "attachment" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == [e.pk for e in entries[:2]]
    assert rows[0]["payload"] == BAD
    assert rows[0]["job"] == "orders"
    assert "symbol" in rows[0]["error_message"]
    assert rows[0]["error_group"] == entries[0].error_group_id
    audit = OperatorAction.objects.get(action=Action.EXPORT)
    assert audit.count == 2
    assert audit.entry_ids == [e.pk for e in entries[:2]]
    assert audit.outcome == "exported 2 entries"


def test_entry_page_and_export_show_a_traceback_stored_per_failure_site_whole(
    admin_client_, fail, job
):
    entries = fail(3)
    whole = redaction.short_paths(captured_tracebacks(job, [BAD])[0])
    assert DLQEntry.objects.get(pk=entries[0].pk).traceback_head_id is not None

    page = admin_client_.get(f"{LIST}{entries[0].pk}/change/").content.decode()
    assert f"<pre>{escape(whole)}</pre>" in page
    with CaptureQueriesContext(connection) as exported:
        response = admin_client_.post(
            LIST, {"action": "export_jsonl", "_selected_action": [e.pk for e in entries]}
        )
        lines = b"".join(response.streaming_content).splitlines()
    assert [json.loads(line)["traceback"] for line in lines] == [whole] * 3
    # The heads come joined to their entries, not read one an entry.
    assert not [q for q in exported.captured_queries if 'FROM "dlq_tracebackhead"' in q["sql"]]


def test_export_of_every_matching_entry_walks_them_in_chunks(admin_client_, fail, monkeypatch):
    monkeypatch.setattr(export, "EXPORT_CHUNK", 2)
    entries = fail(5)
    response = admin_client_.post(
        LIST, {"action": "export_jsonl", "_selected_action": [entries[0].pk], "select_across": "1"}
    )
    ids = [json.loads(line)["id"] for line in b"".join(response.streaming_content).splitlines()]
    assert ids == [e.pk for e in entries]


def test_no_delete_action_is_offered_on_dlq_entries(admin_client_, fail):
    fail(1)
    choices = admin_client_.get(LIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in choices if name] == [
        "requeue_selected",
        "discard_selected",
        "export_jsonl",
    ]


def test_hostile_content_renders_escaped_and_intact(admin_client_, fail):
    [entry] = fail(1)
    DLQEntry.objects.filter(pk=entry.pk).update(
        payload=HOSTILE_PAYLOAD, error_message=HOSTILE_MESSAGE, traceback=HOSTILE_MESSAGE
    )
    pages = {
        "list": admin_client_.get(LIST).content.decode(),
        "detail": admin_client_.get(f"{LIST}{entry.pk}/change/").content.decode(),
        "edit": admin_client_.get(f"{LIST}{entry.pk}/edit-payload/").content.decode(),
        "discard": admin_client_.get(f"{LIST}{entry.pk}/discard/").content.decode(),
        "search": admin_client_.get(LIST, {"q": SCRIPT}).content.decode(),
    }
    for name, content in pages.items():
        assert "<script>alert(1)" not in content, name
        assert ESCAPED_SCRIPT in content, name
        assert ODD in content, name
    # The list shows an excerpt; the entry's page shows everything.
    assert "&quot;quoted&quot; &#x27;single&#x27;" in pages["list"]
    detail = pages["detail"]
    assert "&quot;quoted&quot; &#x27;single&#x27; " + ODD + " " + "y" * 5000 in detail
    assert "x" * 5000 in detail
    assert "&quot;\\&quot;&#x27;&quot;" in detail  # the payload's "\"'" as JSON, escaped
    assert "x" * 5000 in pages["edit"]
    # And the export gives the very same data back.
    response = admin_client_.post(LIST, {"action": "export_jsonl", "_selected_action": [entry.pk]})
    [row] = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert (row["payload"], row["error_message"]) == (HOSTILE_PAYLOAD, HOSTILE_MESSAGE)


@pytest.mark.parametrize(("query", "rows"), LIST_QUERIES)
def test_dlq_list_runs_as_many_queries_for_60_rows_as_for_1(
    admin_client_, job, fail, django_assert_max_num_queries, django_assert_num_queries, query, rows
):
    """Session, user, the job filter's Job rows, the group's name, the count, the page and the
    newest id for "requeue all matching": never one per row, whatever the filters."""
    [entry] = fail(1)
    ids = {"job": job.pk, "group": entry.error_group_id, "batch": entry.batch_id, "entry": entry.pk}
    query = {k: v.format(**ids) for k, v in query.items()}
    with django_assert_max_num_queries(7) as one_row:
        assert admin_client_.get(LIST, query).status_code == 200
    more = fail(60)
    if query.get("q", "").startswith("batch:"):
        query["q"] = f"batch:{more[0].batch_id}"
    with django_assert_num_queries(len(one_row)):
        response = admin_client_.get(LIST, query)
    assert len(response.context["cl"].result_list) == rows


def test_dlq_list_names_the_error_group_it_is_filtered_by(admin_client_, fail):
    [entry] = fail(1)
    response = admin_client_.get(LIST, {"error_group__id__exact": entry.error_group_id})
    content = response.content.decode()
    assert f"Error group #{entry.error_group_id} of orders: RecordInvalid" in content
    assert "Field &#x27;symbol&#x27;: missing (required)" in content
    assert admin_client_.get(LIST, {"error_group__id__exact": "x"})["Location"].endswith("e=1")
    assert admin_client_.get(LIST, {"batch__id__exact": "x"})["Location"].endswith("e=1")
    # An unknown group or batch lists nothing (a dropped filter would list everything).
    for param in ("error_group__id__exact", "batch__id__exact"):
        response = admin_client_.get(LIST, {param: 987654})
        assert list(response.context["cl"].result_list) == [], param
    response = admin_client_.get(LIST, {"batch__id__exact": entry.batch_id})
    assert list(response.context["cl"].result_list) == [entry]


def test_dlq_list_created_filter_uses_fixed_periods(admin_client_, fail):
    old, new = fail(2)
    DLQEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    for period, expected in [
        ("1h", [new]),
        ("24h", [new]),
        ("7d", [new, old]),
        ("30d", [new, old]),
    ]:
        response = admin_client_.get(LIST, {"created": period})
        assert list(response.context["cl"].result_list) == expected, period
    assert admin_client_.get(LIST, {"created": "1y"})["Location"].endswith("e=1")


def test_dlq_list_filters_by_job_listing_job_rows(admin_client_, make_job, job, fail):
    other = make_job("other", processor="json_schema", config={"schema": STRICT})
    mine, theirs = fail(1), fail(1, target=other)
    response = admin_client_.get(LIST, {"job__id__exact": other.pk})
    assert list(response.context["cl"].result_list) == theirs
    [job_filter] = [f for f in response.context["cl"].filter_specs if f.title == "job"]
    assert {name for _, name in job_filter.lookup_choices} == {"orders", "other"}
    assert mine


@pytest.mark.parametrize("rows", [1, 60])
def test_dlq_list_runs_a_bounded_number_of_queries(
    admin_client_, make_entries, django_assert_max_num_queries, rows
):
    """Session, user, the job filter's and the group filter's choices, the count and the page:
    never one per row."""
    make_entries(rows)
    with django_assert_max_num_queries(6):
        response = admin_client_.get("/admin/dlq/dlqentry/")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_dlq_list_leaves_big_columns_out_and_runs_no_distinct(admin_client_, make_entries):
    make_entries(3)
    with CaptureQueriesContext(connection) as queries:
        admin_client_.get("/admin/dlq/dlqentry/?status__exact=pending")
    sqls = [q["sql"] for q in queries]
    assert not any("DISTINCT" in sql for sql in sqls)
    rows = [sql for sql in sqls if 'FROM "dlq_dlqentry"' in sql and "COUNT" not in sql]
    assert rows
    # Only excerpts of the message and the record are read, through SUBSTR (SUBSTRING on
    # PostgreSQL).
    rows = [
        re.sub(r'SUBSTR\w*\(\(?(CAST\()?"dlq_dlqentry"\."(error_message|payload)"', "", sql)
        for sql in rows
    ]
    for column in ("payload", "traceback", "error_message"):
        assert all(f'"dlq_dlqentry"."{column}"' not in sql for sql in rows)


def test_dlq_list_filters_by_status_job_and_created_date(admin_client_, job, make_entries):
    make_entries(2)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = admin_client_.get(
        "/admin/dlq/dlqentry/",
        {"status__exact": "pending", "job__id__exact": job.pk, "created_at__gte": since},
    )
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2
    response = admin_client_.get("/admin/dlq/dlqentry/?status__exact=resolved")
    assert len(response.context["cl"].result_list) == 0


def test_dlq_list_links_to_one_error_group(admin_client_, group, make_entries):
    make_entries(2)
    response = admin_client_.get(f"/admin/dlq/dlqentry/?error_group__id__exact={group.pk}")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("{pk}", True),
        (" {pk} ", True),
        ("column 'symbol' in ROW", True),
        ("no such words", False),
        ("99999999999999999999999", False),
        ("0", False),  # digits are an id, even one no entry can have ("row 0" is in the text)
        ("batch:0", False),
        ("100%_", False),
    ],
)
def test_dlq_search_finds_an_entry_by_id_or_by_words_of_its_message(
    admin_client_, entry, term, found
):
    """A number is an id; other text is looked up in the message (a trigram index on PostgreSQL);
    LIKE wildcards are taken literally and overflowing ids just find nothing."""
    response = admin_client_.get("/admin/dlq/dlqentry/", {"q": term.format(pk=entry.pk)})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == ([entry] if found else [])


def test_dlq_entry_page_escapes_the_payload(admin_client_, entry):
    content = admin_client_.get(f"/admin/dlq/dlqentry/{entry.pk}/change/").content.decode()
    assert SCRIPT not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_dlq_entry_page_shows_record_error_traceback_context_and_history(admin_client_, entry):
    content = admin_client_.get(f"/admin/dlq/dlqentry/{entry.pk}/change/").content.decode()
    assert "<pre>{\n  &quot;note&quot;: " in content  # pretty-printed, indent 2
    assert "Missing required column &#x27;symbol&#x27; in row 0" in content
    assert "Traceback (most recent call last):" in content
    for context_value in ("node-1", "worker-a", "eu-west-1", "1.0.0"):
        assert context_value in content
    # Its original attempt, from the entry's own row (there is no attempt row of it).
    assert attempt_history(content) == [
        original_attempt_row(entry, "Missing required column 'symbol' in row 0", "node-1")
    ]


def test_an_original_attempt_with_its_own_row_is_shown_once(admin_client_, entry, attempt):
    content = admin_client_.get(f"/admin/dlq/dlqentry/{entry.pk}/change/").content.decode()
    [(_, kind, *_)] = attempt_history(content)
    assert kind == "Original processing"


def test_the_attempt_history_is_shown_to_whoever_may_view_attempts(login, entry):
    page = login("dlq.view_dlqentry").get(f"/admin/dlq/dlqentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert attempt_history(page.content.decode()) == []
    page = login("dlq.view_dlqentry", "dlq.view_dlqattempt").get(
        f"/admin/dlq/dlqentry/{entry.pk}/change/"
    )
    assert len(attempt_history(page.content.decode())) == 1


def test_dlq_entries_cannot_be_added_edited_or_deleted_in_bulk(admin_client_, entry):
    response = admin_client_.get("/admin/dlq/dlqentry/")
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert admin_client_.get("/admin/dlq/dlqentry/add/").status_code == 403
    response = admin_client_.post(f"/admin/dlq/dlqentry/{entry.pk}/change/", {"status": "resolved"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.status == DLQEntry.Status.PENDING


def test_the_list_shows_each_entry_group_and_record_and_leads_to_the_group(admin_client_, fail):
    entries = fail(2)
    group_id = entries[0].error_group_id
    listing = admin_client_.get(f"/admin/dlq/dlqentry/?error_group__id__exact={group_id}")
    body = listing.content.decode()
    assert f'<a href="/errors/{group_id}/">#{group_id}</a>' in body  # the group column
    assert "{&quot;price&quot;: 1}" in body  # the record's excerpt
    assert f'href="/errors/{group_id}/" id="group-page"' in body  # back to the group's page


def test_an_entry_page_leads_to_the_next_pending_entry_of_its_group(admin_client_, fail):
    first, second, third = fail(3)
    page = admin_client_.get(f"/admin/dlq/dlqentry/{third.pk}/change/").content.decode()
    assert f'href="/admin/dlq/dlqentry/{second.pk}/change/" id="next-in-group"' in page
    assert f'href="/errors/{third.error_group_id}/" id="group-page"' in page
    last = admin_client_.get(f"/admin/dlq/dlqentry/{first.pk}/change/").content.decode()
    assert 'id="next-in-group"' not in last  # the oldest has none after it


def test_the_sidebar_offers_the_groups_with_most_waiting_of_the_job(
    admin_client_, job, fail, make_job, run_batch
):
    fail(3)
    other = make_job("payments")
    run_batch(other, [{"price": 1}] * 5)
    mine = DLQEntry.objects.filter(job=job).first().error_group_id
    theirs = DLQEntry.objects.filter(job=other).first().error_group_id

    everything = admin_client_.get("/admin/dlq/dlqentry/").content.decode()
    assert everything.index(f"error_group__id__exact={theirs}") < everything.index(
        f"error_group__id__exact={mine}"
    )  # the bigger backlog first
    assert "(5)" in everything and "(3)" in everything
    assert "payments: Missing required column" in everything  # whose group, without a job filter

    of_job = admin_client_.get(f"/admin/dlq/dlqentry/?job__id__exact={job.pk}").content.decode()
    assert f"error_group__id__exact={mine}" in of_job
    assert f"error_group__id__exact={theirs}" not in of_job
