"""A triage-ready DLQ list: pending by default, a search that also finds record values within
one job and status, and the list's filters kept through every action and page."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.admin import BoundedCountPaginator
from dlq.admin.entries import DLQEntryAdmin
from dlq.models import Batch, DLQEntry, OperatorAction, RequeueRun

from .helpers import LIST, STRICT, Action, Status, matching_url, messages_of, statuses, worked


@pytest.fixture
def mixed(make_entries):
    """Four entries: two pending, one resolved, one discarded (newest first in the list)."""
    entries = make_entries(4)
    DLQEntry.objects.filter(pk=entries[1].pk).update(status=Status.RESOLVED)
    DLQEntry.objects.filter(pk=entries[2].pk).update(status=Status.DISCARDED)
    return entries


def listed(response):
    return [e.pk for e in response.context["cl"].result_list]


def ids(entries):
    return sorted((e.pk for e in entries), reverse=True)


def test_the_list_shows_pending_entries_unless_the_operator_chooses_a_status(admin_client_, mixed):
    pending, resolved, _, newest = mixed
    response = admin_client_.get(LIST)
    assert listed(response) == ids([newest, pending])
    assert response.context["cl"].result_count == 2  # the count follows the same filter
    assert listed(admin_client_.get(LIST, {"status__exact": "all"})) == ids(mixed)
    assert listed(admin_client_.get(LIST, {"status__exact": "resolved"})) == [resolved.pk]
    assert listed(admin_client_.get(LIST, {"status__exact": "pending"})) == ids([newest, pending])
    assert admin_client_.get(LIST, {"status__exact": "bogus"})["Location"].endswith("e=1")


def test_the_status_filter_marks_pending_by_default_and_offers_all(admin_client_, mixed):
    [status] = [
        f for f in admin_client_.get(LIST).context["cl"].filter_specs if f.title == "status"
    ]
    content = admin_client_.get(LIST).content.decode()
    assert '<li class="selected">\n    <a href="?status__exact=pending">Pending</a>' in content
    assert '<a href="?status__exact=all">All</a>' in content
    everything = admin_client_.get(LIST, {"status__exact": "all"}).content.decode()
    assert '<li class="selected">\n    <a href="?status__exact=all">All</a>' in everything
    assert status.value() is None


def test_the_default_page_reads_only_pending_ids_however_few_are_pending(make_entries):
    """After a clean-up nearly every entry is resolved: the newest pending ones are found
    through their own index, not by walking the newer resolved ones."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan")
    entries = make_entries(300)
    DLQEntry.objects.filter(pk__gt=entries[1].pk).update(status=Status.RESOLVED)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE dlq_dlqentry")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is a page or two
        plan = DLQEntry.objects.filter(status=Status.PENDING).order_by("-pk")[:100].explain()
    assert "dlqentry_pending_id_idx" in plan


def test_the_list_says_about_when_it_shows_an_estimate(admin_client_, mixed, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "count_exactly_up_to", 1)
    monkeypatch.setattr(DLQEntryAdmin, "list_per_page", 1)  # two pages of pending entries
    content = admin_client_.get(LIST).content.decode()
    if connection.vendor == "postgresql":
        assert re.search(r'<span id="result-count">about \d+ DLQ entries</span>', content)
    else:  # SQLite counts exactly
        assert '<span id="result-count">2 DLQ entries</span>' in content


def test_links_into_the_list_show_what_they_name(admin_client_, job, mixed):
    pending, _, _, newest = mixed
    # The health page's and a group's links name pending, as before.
    link = f"{LIST}?job__id__exact={job.pk}&status__exact=pending"
    assert listed(admin_client_.get(link)) == ids([newest, pending])
    # A batch's link counts all the entries it left, so it lists them all.
    Batch.objects.filter(pk=pending.batch_id).update(dlq_added=4)
    page = admin_client_.get(f"/admin/dlq/batch/{pending.batch_id}/change/").content.decode()
    link = f"/admin/dlq/dlqentry/?batch__id__exact={pending.batch_id}&amp;status__exact=all"
    assert link in page
    assert listed(admin_client_.get(link.replace("&amp;", "&"))) == ids(mixed)


def test_a_runs_entries_link_lists_them_whatever_their_status(admin_client_, job, mixed):
    url = matching_url(admin_client_.get(LIST, {"job__id__exact": job.pk}))
    admin_client_.post(url, {"rate_limit": "", "canary_size": ""})
    run = RequeueRun.objects.get()
    page = admin_client_.get(f"/admin/dlq/requeuerun/{run.pk}/change/").content.decode()
    link = f"/admin/dlq/dlqentry/?job__id__exact={job.pk}&amp;status__exact=all"
    assert f'href="{link}" id="run-entries"' in page


def test_requeue_all_matching_follows_the_default_pending_filter(admin_client_, job, mixed):
    response = admin_client_.get(LIST, {"job__id__exact": job.pk})
    confirm = admin_client_.get(matching_url(response))
    assert confirm.context["count"] == 2
    everything = admin_client_.get(LIST, {"job__id__exact": job.pk, "status__exact": "all"})
    assert "requeue_matching_url" not in everything.context
    assert everything.context["requeue_matching_note"] == "Only pending entries are requeued."


def test_export_of_every_matching_entry_follows_the_default_pending_filter(
    admin_client_, job, mixed
):
    pending, _, _, newest = mixed
    response = admin_client_.post(
        f"{LIST}?job__id__exact={job.pk}",
        {"action": "export_jsonl", "_selected_action": [pending.pk], "select_across": "1"},
    )
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [row["id"] for row in rows] == [pending.pk, newest.pk]
    audit = OperatorAction.objects.get(action=Action.EXPORT)
    assert audit.filters == {"job__id__exact": str(job.pk), "status__exact": "pending"}
    assert "status__exact=pending" in audit.target


def test_discarding_every_matching_entry_records_the_status_it_acted_on(admin_client_, mixed):
    response = admin_client_.post(
        LIST,
        {"action": "discard_selected", "_selected_action": [mixed[0].pk], "select_across": "1"},
        follow=True,
    )
    assert "Discarded 2 pending entries." in messages_of(response)
    audit = OperatorAction.objects.get(action=Action.DISCARD)
    assert audit.target == "every DLQ entry matching status__exact=pending"


# --- search: error text everywhere, record values within one job and status -----------------


@pytest.fixture
def trades(make_entries, make_job, batch, group):
    """Three pending trades of `orders` and one of another job with the same trade id."""
    entries = make_entries(3)
    payloads = [
        {"trade_id": "T-1234", "price": "662,00", "legs": [{"venue": "XLON"}]},
        {"trade_id": "T-9999", "price": 12.5, "order": 98765},
        {"trade_id": "T-12345", "note": "100% of 'it' \"quoted\" a_b"},
    ]
    for entry, payload in zip(entries, payloads, strict=True):
        DLQEntry.objects.filter(pk=entry.pk).update(payload=payload)
    other = make_job("payments", processor="json_schema", config={"schema": STRICT})
    [theirs] = make_entries(1, payload={"trade_id": "T-1234"})
    DLQEntry.objects.filter(pk=theirs.pk).update(job=other)
    return entries, theirs


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("T-1234", [0]),  # a string value, whole, at the top
        (" T-1234 ", [0]),
        ("XLON", [0]),  # at any depth, in a list
        ("662,00", [0]),
        ("12.5", [1]),  # the number a term spells
        ("98765", [1]),  # digits: an entry id, or a value of the record
        ("T-12", []),  # a fragment is no value
        ("t-1234", []),  # values are compared as typed
        ("trade_id", []),  # a key's name is no value
        ("%", []),
        ("_", []),
        ("''", []),
        ('"', []),
        ("\\", []),
        ('"} || true || {"', []),  # no way out of the jsonpath string
        ("1e999", []),  # not a finite number
        ("100% of 'it' \"quoted\" a_b", [2]),  # quotes and wildcards, literally
        ("x" * 5000, []),
    ],
)
def test_search_within_a_job_also_finds_values_of_the_record(
    admin_client_, job, trades, term, found
):
    entries, _ = trades
    response = admin_client_.get(LIST, {"job__id__exact": job.pk, "q": term})
    assert response.status_code == 200
    assert listed(response) == sorted((entries[i].pk for i in found), reverse=True)


def test_search_in_record_values_needs_the_permission_to_see_sensitive_fields(login, job, trades):
    """A search matching whole values would confirm a guessed secret (issue 13, finding 3):
    without view_sensitive_payload, the box searches error text and ids only."""
    entries, _ = trades
    DLQEntry.objects.filter(pk=entries[0].pk).update(payload={"password": "S3cr3t-pw!"})
    query = {"job__id__exact": job.pk, "q": "S3cr3t-pw!"}
    viewer = login("dlq.view_dlqentry")
    page = viewer.get(LIST, query)
    assert listed(page) == []
    assert "also a value of the record" not in page.content.decode()
    trusted = login("dlq.view_dlqentry", "dlq.view_sensitive_payload")
    assert listed(trusted.get(LIST, query)) == [entries[0].pk]


def test_search_finds_record_values_only_with_one_job_and_one_status(admin_client_, job, trades):
    entries, theirs = trades
    no_job = admin_client_.get(LIST, {"q": "T-1234"})
    assert listed(no_job) == []  # error text only: the whole DLQ is never scanned for values
    assert "Select a job to also search payload values." in no_job.content.decode()
    of_job = admin_client_.get(LIST, {"job__id__exact": job.pk, "q": "T-1234"})
    assert listed(of_job) == [entries[0].pk]
    assert "also a value of the record" in of_job.content.decode()
    assert "Select a job" not in of_job.content.decode()
    every_status = admin_client_.get(
        LIST, {"job__id__exact": job.pk, "status__exact": "all", "q": "T-1234"}
    )
    assert listed(every_status) == []
    assert "Select one status to also search payload values." in every_status.content.decode()
    resolved = {"job__id__exact": job.pk, "status__exact": "resolved", "q": "T-1234"}
    DLQEntry.objects.filter(pk=entries[0].pk).update(status=Status.RESOLVED)
    assert listed(admin_client_.get(LIST, resolved)) == [entries[0].pk]
    # The error text is still searched alongside, and an id still names an entry.
    both = admin_client_.get(LIST, {"job__id__exact": job.pk, "q": "column 'symbol'"})
    assert listed(both) == [entries[2].pk, entries[1].pk]
    theirs.refresh_from_db()
    by_id = admin_client_.get(LIST, {"job__id__exact": theirs.job_id, "q": str(theirs.pk)})
    assert listed(by_id) == [theirs.pk]


def test_the_record_search_reads_only_the_jobs_entries_of_that_status(admin_client_, job, trades):
    with CaptureQueriesContext(connection) as queries:
        admin_client_.get(LIST, {"job__id__exact": job.pk, "q": "T-1234"})
    marker = "@?" if connection.vendor == "postgresql" else "json_tree"
    # One read of those rows: a list that fits on a page is counted from its page.
    [sql] = [q["sql"] for q in queries if marker in q["sql"]]
    assert '"dlq_dlqentry"."job_id" = ' in sql
    assert '"dlq_dlqentry"."status" = ' in sql
    with CaptureQueriesContext(connection) as queries:
        admin_client_.get(LIST, {"q": "T-1234"})
    assert not [q for q in queries if marker in q["sql"]]


# --- the list's filters, kept through every action and page ---------------------------------


@pytest.fixture
def filtered(job, fail):
    """A filtered list's query (as the browser sends it) and its entries."""
    entries = fail(3)
    return f"job__id__exact={job.pk}&q=symbol&o=-1", entries


def test_bulk_actions_return_to_the_filtered_list(admin_client_, filtered):
    query, entries = filtered
    for action, entry in [("requeue_selected", entries[0]), ("discard_selected", entries[1])]:
        response = admin_client_.post(
            f"{LIST}?{query}",
            {"action": action, "_selected_action": [entry.pk]},
            follow=True,
        )
        assert response.redirect_chain == [(f"{LIST}?{query}", 302)], action
    assert RequeueRun.objects.get().entry_ids == [entries[0].pk]
    assert statuses(entries[1:]) == [Status.DISCARDED, Status.PENDING]
    # The export is a download: the list stays as it was; with nothing selected, the admin
    # sends the operator back to the same filtered list.
    export = admin_client_.post(
        f"{LIST}?{query}", {"action": "export_jsonl", "_selected_action": [entries[1].pk]}
    )
    assert export.streaming
    empty = admin_client_.post(
        f"{LIST}?{query}", {"action": "export_jsonl", "index": "0"}, follow=True
    )
    assert empty.redirect_chain == [(f"{LIST}?{query}", 302)]


def test_requeue_all_matching_leads_back_to_the_filtered_list(admin_client_, job, filtered):
    query, _ = filtered
    query = query.replace("&q=symbol", "")  # a run cannot follow a text search
    listing = admin_client_.get(f"{LIST}?{query}")
    url = matching_url(listing)
    assert parse_qs(urlsplit(url).query)["_changelist_filters"] == [query]
    confirm = admin_client_.get(url).content.decode()
    back = f"{LIST}?{query}".replace("&", "&amp;")
    assert f'href="{back}" class="closelink" id="cancel-requeue"' in confirm
    response = admin_client_.post(url, {"rate_limit": "", "canary_size": ""}, follow=True)
    assert response.redirect_chain == [(f"{LIST}?{query}", 302)]
    run = RequeueRun.objects.get()
    assert run.total == 3
    assert f'href="/admin/dlq/requeuerun/{run.pk}/change/"' in response.content.decode()
    # A refused scope says why and also leads back to the list.
    bad = admin_client_.get(url.replace("max_id=", "max_id=x"))
    assert bad.status_code == 400
    assert f'href="{back}" id="back-to-list"' in bad.content.decode()


def test_requeue_all_matching_from_a_group_page_opens_the_run(admin_client_, fail):
    [entry] = fail(1)
    page = admin_client_.get(f"/errors/{entry.error_group_id}/").content.decode()
    url = re.search(r'id="group-requeue" href="([^"]+)"', page)[1].replace("&amp;", "&")
    response = admin_client_.post(url, {"rate_limit": "", "canary_size": ""}, follow=True)
    run = RequeueRun.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/dlq/requeuerun/{run.pk}/change/"


def test_an_entry_opened_from_the_list_closes_back_to_it_after_an_edit(admin_client_, filtered):
    query, entries = filtered
    listing = admin_client_.get(f"{LIST}?{query}").content.decode()
    kept = "job__id__exact%3D{}%26q%3Dsymbol%26o%3D-1".format(query.split("&")[0].split("=")[1])
    entry_url = f"{LIST}{entries[-1].pk}/change/?_changelist_filters={kept}"
    assert f'href="{entry_url}"' in listing  # the row's link carries the list's query
    close = f'href="{LIST}?{query.replace("&", "&amp;")}" class="closelink"'
    assert close in admin_client_.get(entry_url).content.decode()
    edit = admin_client_.get(f"{LIST}{entries[-1].pk}/edit-payload/?_changelist_filters={kept}")
    assert f'href="{entry_url}" class="closelink"' in edit.content.decode()  # its Cancel
    saved = admin_client_.post(
        f"{LIST}{entries[-1].pk}/edit-payload/?_changelist_filters={kept}",
        {"payload": '{"price": 2}'},
        follow=True,
    )
    saved = worked(admin_client_, saved)
    assert saved.redirect_chain == [(entry_url, 302)]
    assert close in saved.content.decode()  # and the entry page's Close, after the edit
