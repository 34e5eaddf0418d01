"""Operator workflows in the admin (issue 3, SPEC §7): requeue, edit, discard, export, runs,
the audit trail and error groups, with permissions, hostile content and bounded queries."""

import itertools
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from dlq import requeue
from dlq.models import DLQEntry, OperatorAction, RequeueRun
from errors.models import ErrorGroup
from tests.conftest import BAD
from tests.dlq.schema_jobs import relax

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

_names = itertools.count()


@pytest.fixture
def login(db, django_user_model):
    """A client logged in as a new staff user with exactly these permissions (or a superuser)."""

    def make(*perms, superuser=False):
        name = f"user{next(_names)}"
        if superuser:
            user = django_user_model.objects.create_superuser(name, f"{name}@example.com", "pw")
        else:
            user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def admin_client_(login):
    return login(superuser=True)


@pytest.fixture
def job(make_job):
    """A json_schema job: its records fail until its schema is relaxed."""
    return make_job("orders", processor="json_schema", config={"schema": STRICT})


@pytest.fixture
def fail(run_batch, job):
    """Submit `n` bad records and let the engine put them in the DLQ; return the entries."""

    def make(n, target=None):
        batch = run_batch(target or job, [BAD] * n)
        return list(DLQEntry.objects.filter(batch=batch).order_by("pk"))

    return make


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


# --- bulk actions ------------------------------------------------------------


def test_requeue_selected_starts_a_background_run_and_opens_its_page(admin_client_, job, fail):
    entries = fail(3)
    response = post_action(admin_client_, "requeue_selected", entries[:2])
    run = RequeueRun.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/dlq/requeuerun/{run.pk}/change/"
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


def test_export_of_every_matching_entry_walks_them_in_chunks(admin_client_, fail, monkeypatch):
    from dlq import admin_export

    monkeypatch.setattr(admin_export, "CHUNK", 2)
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


# --- requeue all matching ----------------------------------------------------


def test_requeue_all_matching_leaves_out_entries_that_arrive_after_the_page(
    admin_client_, job, fail
):
    seen = fail(3)
    response = admin_client_.get(LIST, {"job__id__exact": job.pk, "status__exact": "pending"})
    url = matching_url(response)
    assert parse_qs(urlsplit(url).query)["max_id"] == [str(seen[-1].pk)]

    later = fail(2)  # arrive after the page was rendered
    confirm = admin_client_.get(url)
    assert confirm.status_code == 200
    assert confirm.context["count"] == 3
    assert "<strong>3</strong> pending entries match" in confirm.content.decode()

    response = admin_client_.post(url, {"rate_limit": "", "canary_size": ""}, follow=True)
    run = RequeueRun.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/dlq/requeuerun/{run.pk}/change/"
    assert (run.filters, run.max_id, run.total) == ({"job": "orders"}, seen[-1].pk, 3)
    relax(job)
    requeue.execute_run(run.pk)
    assert statuses(seen) == [Status.RESOLVED] * 3
    assert statuses(later) == [Status.PENDING] * 2
    assert OperatorAction.objects.get(action=Action.REQUEUE).requeue_run == run


def test_requeue_all_matching_counts_only_pending_entries_of_the_filter(
    admin_client_, make_job, job, fail
):
    entries = fail(4)
    fail(2, target=make_job("other", processor="json_schema", config={"schema": STRICT}))
    DLQEntry.objects.filter(pk=entries[0].pk).update(status=Status.DISCARDED)
    group = entries[1].error_group
    response = admin_client_.get(LIST, {"error_group__id__exact": group.pk})
    confirm = admin_client_.get(matching_url(response))
    assert confirm.context["count"] == 3
    assert f"#{group.pk}" in confirm.content.decode()


def test_requeue_all_matching_follows_a_batch_search(admin_client_, job, fail):
    first, second = fail(2), fail(3)
    response = admin_client_.get(LIST, {"q": f"batch:{second[0].batch_id}"})
    assert list(response.context["cl"].result_list) == second[::-1]
    confirm = admin_client_.get(matching_url(response))
    assert confirm.context["count"] == 3
    admin_client_.post(matching_url(response), {})
    assert RequeueRun.objects.get().filters == {"batch": second[0].batch_id}
    assert statuses(first) == [Status.PENDING] * 2


def test_requeue_all_matching_options_reach_the_run(admin_client_, job, fail):
    fail(4)
    url = matching_url(admin_client_.get(LIST, {"job__id__exact": job.pk}))
    admin_client_.post(
        url, {"rate_limit": "5", "canary_size": "2", "canary_max_failure_ratio": "0.25"}
    )
    run = RequeueRun.objects.get()
    assert (run.rate_limit, run.canary_size, run.canary_max_failure_ratio) == (5.0, 2, 0.25)


def test_requeue_all_matching_dry_run_changes_nothing(admin_client_, job, fail):
    entries = fail(2)
    url = matching_url(admin_client_.get(LIST, {"job__id__exact": job.pk}))
    response = admin_client_.post(url, {"dry_run": "on"}, follow=True)
    run = RequeueRun.objects.get()
    assert (run.dry_run, run.status, run.total) == (True, "finished", 2)
    assert any("would be requeued" in m for m in messages_of(response))
    assert statuses(entries) == [Status.PENDING] * 2
    assert OperatorAction.objects.get(action=Action.REQUEUE).dry_run


def test_requeue_all_matching_refuses_bad_options_and_changes_nothing(admin_client_, job, fail):
    fail(1)
    url = matching_url(admin_client_.get(LIST, {"job__id__exact": job.pk}))
    response = admin_client_.post(url, {"rate_limit": "-1", "canary_size": "abc"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not RequeueRun.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        {"job__id__exact": "{job}", "created": "24h"},
        {"job__id__exact": "{job}", "q": "symbol"},
        {"job__id__exact": "{job}", "status__exact": "resolved"},
        {"status__exact": "pending"},
    ],
)
def test_requeue_all_matching_is_not_offered_for_a_set_a_run_cannot_select(
    admin_client_, job, fail, query
):
    """A run filters by job, error group and batch; anything else would widen what it acts on."""
    fail(1)
    query = {k: v.format(job=job.pk) for k, v in query.items()}
    response = admin_client_.get(LIST, query)
    assert "requeue_matching_url" not in response.context
    assert response.context["requeue_matching_note"]
    confirm = admin_client_.get("/admin/dlq/dlqentry/requeue-matching/", {**query, "max_id": 99})
    assert confirm.status_code == 400
    assert (
        admin_client_.post(
            "/admin/dlq/dlqentry/requeue-matching/?"
            + "&".join(f"{k}={v}" for k, v in query.items())
        ).status_code
        == 400
    )
    assert not RequeueRun.objects.exists()


# --- the entry's page --------------------------------------------------------


def test_requeue_button_resolves_an_entry_once_the_cause_is_fixed(admin_client_, job, fail):
    [entry] = fail(1)
    relax(job)
    response = admin_client_.post(f"{LIST}{entry.pk}/requeue/", follow=True)
    assert response.redirect_chain[-1][0] == f"{LIST}{entry.pk}/change/"
    assert f"Entry {entry.pk} resolved." in messages_of(response)
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == (Status.RESOLVED, 2)
    assert OperatorAction.objects.get(action=Action.REQUEUE).count == 1
    assert "Requeue" in response.content.decode()  # the attempt history shows it


def test_requeue_button_says_why_an_entry_failed_again(admin_client_, fail):
    [entry] = fail(1)
    response = admin_client_.post(f"{LIST}{entry.pk}/requeue/", follow=True)
    [message] = messages_of(response)
    assert message.startswith(f"Entry {entry.pk} failed again: RecordInvalid: Field 'symbol'")
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == (Status.PENDING, 2)


def test_requeue_button_only_takes_posts(admin_client_, fail):
    [entry] = fail(1)
    assert admin_client_.get(f"{LIST}{entry.pk}/requeue/").status_code == 405
    assert not RequeueRun.objects.exists()


def test_entry_page_shows_the_buttons_of_a_pending_entry_only(admin_client_, fail):
    [entry] = fail(1)
    content = admin_client_.get(f"{LIST}{entry.pk}/change/").content.decode()
    for button in ('id="requeue-entry"', 'id="edit-payload"', 'id="discard-entry"'):
        assert button in content
    DLQEntry.objects.filter(pk=entry.pk).update(status=Status.RESOLVED)
    content = admin_client_.get(f"{LIST}{entry.pk}/change/").content.decode()
    assert 'id="requeue-entry"' not in content


def test_edit_payload_form_is_prefilled_with_the_json(admin_client_, fail):
    [entry] = fail(1)
    response = admin_client_.get(f"{LIST}{entry.pk}/edit-payload/")
    assert response.status_code == 200
    assert json.loads(response.context["form"]["payload"].value()) == BAD


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"symbol": "ACME", "price": ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"price": NaN}', "NaN"),
    ],
)
def test_edit_payload_refuses_bad_json_and_changes_nothing(admin_client_, job, fail, text, error):
    [entry] = fail(1)
    relax(job)
    response = admin_client_.post(f"{LIST}{entry.pk}/edit-payload/", {"payload": text})
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["payload"])
    assert response.context["form"]["payload"].value() == text  # re-shown as typed
    entry.refresh_from_db()
    assert (entry.payload, entry.original_payload, entry.status) == (BAD, None, Status.PENDING)
    assert not OperatorAction.objects.filter(action__in=[Action.EDIT, Action.REQUEUE]).exists()


def test_edit_payload_keeps_the_original_and_resolves_the_entry(admin_client_, fail):
    [entry] = fail(1)
    fixed = {"symbol": "ACME", "price": 1}
    response = admin_client_.post(
        f"{LIST}{entry.pk}/edit-payload/", {"payload": json.dumps(fixed)}, follow=True
    )
    assert f"Entry {entry.pk} resolved." in messages_of(response)
    entry.refresh_from_db()
    assert (entry.payload, entry.original_payload, entry.status) == (fixed, BAD, Status.RESOLVED)
    edit = OperatorAction.objects.get(action=Action.EDIT)
    assert edit.details == {"before": BAD, "after": fixed}
    content = admin_client_.get(f"{LIST}{entry.pk}/change/").content.decode()
    assert "Record as it failed" in content


def test_discard_button_asks_first_then_discards(admin_client_, fail):
    [entry] = fail(1)
    page = admin_client_.get(f"{LIST}{entry.pk}/discard/")
    assert page.status_code == 200
    assert "Yes, discard it" in page.content.decode()
    assert statuses([entry]) == [Status.PENDING]
    response = admin_client_.post(f"{LIST}{entry.pk}/discard/", follow=True)
    assert f"Entry {entry.pk} discarded." in messages_of(response)
    assert statuses([entry]) == [Status.DISCARDED]
    assert OperatorAction.objects.get(action=Action.DISCARD).target == f"DLQ entry {entry.pk}"


def test_entry_pages_of_an_unknown_entry_are_404(admin_client_, db):
    for url in ("999/requeue/", "999/edit-payload/", "999/discard/", "abc/discard/"):
        assert admin_client_.post(LIST + url).status_code == 404, url


def test_entry_pages_are_csrf_protected(login, fail):
    [entry] = fail(1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(login(superuser=True).user)
    for url in ("requeue/", "edit-payload/", "discard/"):
        assert client.post(f"{LIST}{entry.pk}/{url}", {"payload": "{}"}).status_code == 403
    assert statuses([entry]) == [Status.PENDING]


# --- permissions -------------------------------------------------------------


def test_staff_without_requeue_permission_sees_no_requeue_and_gets_403(login, job, fail):
    entries = fail(2)
    viewer = login("dlq.view_dlqentry")
    response = viewer.get(LIST, {"job__id__exact": job.pk})
    assert response.status_code == 200
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "requeue_selected" not in actions
    assert "discard_selected" not in actions
    assert "export_jsonl" in actions
    assert "requeue_matching_url" not in response.context
    assert "Requeue all matching" not in response.content.decode()
    content = viewer.get(f"{LIST}{entries[0].pk}/change/").content.decode()
    assert 'id="requeue-entry"' not in content
    assert 'id="discard-entry"' not in content

    assert viewer.post(f"{LIST}{entries[0].pk}/requeue/").status_code == 403
    assert viewer.get(f"{LIST}{entries[0].pk}/edit-payload/").status_code == 403
    assert viewer.post(f"{LIST}{entries[0].pk}/discard/").status_code == 403
    matching = f"{LIST}requeue-matching/?job__id__exact={job.pk}&max_id={entries[-1].pk}"
    assert viewer.get(matching).status_code == 403
    assert viewer.post(matching, {}).status_code == 403
    post_action(viewer, "requeue_selected", entries)
    post_action(viewer, "discard_selected", entries)
    assert not RequeueRun.objects.exists()
    assert statuses(entries) == [Status.PENDING] * 2


def test_requeue_permission_alone_does_not_allow_discarding(login, job, fail):
    entries = fail(1)
    operator = login("dlq.view_dlqentry", "dlq.requeue_dlqentry")
    response = operator.get(LIST, {"job__id__exact": job.pk})
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "requeue_selected" in actions
    assert "discard_selected" not in actions
    assert response.context["requeue_matching_url"]
    assert operator.post(f"{LIST}{entries[0].pk}/discard/").status_code == 403
    # Whoever may start a run is sent to its page and may watch it.
    response = post_action(operator, "requeue_selected", entries)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith("/admin/dlq/requeuerun/")


def test_discard_permission_allows_discarding_only(login, fail):
    entries = fail(1)
    operator = login("dlq.view_dlqentry", "dlq.discard_dlqentry")
    assert operator.post(f"{LIST}{entries[0].pk}/requeue/").status_code == 403
    operator.post(f"{LIST}{entries[0].pk}/discard/")
    assert statuses(entries) == [Status.DISCARDED]


def test_anonymous_users_are_sent_to_login(client, fail):
    [entry] = fail(1)
    run = RequeueRun.objects.create(created_by="someone", entry_ids=[entry.pk])
    for method, url in [
        ("get", LIST),
        ("get", f"{LIST}{entry.pk}/change/"),
        ("post", f"{LIST}{entry.pk}/requeue/"),
        ("get", f"{LIST}{entry.pk}/edit-payload/"),
        ("post", f"{LIST}{entry.pk}/discard/"),
        ("get", f"{LIST}requeue-matching/?job__id__exact=1&max_id=1"),
        ("get", "/admin/dlq/requeuerun/"),
        ("post", f"/admin/dlq/requeuerun/{run.pk}/cancel/"),
        ("get", "/admin/dlq/operatoraction/"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    assert statuses([entry]) == [Status.PENDING]
    assert RequeueRun.objects.get().status == "queued"


# --- hostile content ---------------------------------------------------------

HOSTILE_MESSAGE = f"{SCRIPT} \"quoted\" 'single' {ODD} " + "y" * 5000
HOSTILE_PAYLOAD = {"note": SCRIPT, "quotes": "\"'", "long": "x" * 5000, "odd": ODD}


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


def test_hostile_group_template_is_escaped_on_group_and_filtered_pages(admin_client_, fail):
    [entry] = fail(1)
    ErrorGroup.objects.filter(pk=entry.error_group_id).update(
        template=HOSTILE_MESSAGE, last_message=HOSTILE_MESSAGE
    )
    for url in (
        f"{LIST}?error_group__id__exact={entry.error_group_id}",
        f"{LIST}requeue-matching/?error_group__id__exact={entry.error_group_id}&max_id=9",
        f"/admin/errors/errorgroup/{entry.error_group_id}/change/",
        "/admin/errors/errorgroup/",
    ):
        content = admin_client_.get(url).content.decode()
        assert "<script>alert(1)" not in content, url
        assert ESCAPED_SCRIPT in content, url


# --- the list ----------------------------------------------------------------

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
    assert "is a required property" in content
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


# --- requeue runs and the audit trail ---------------------------------------


def test_cancel_button_cancels_a_queued_run(admin_client_, fail):
    entries = fail(2)
    run = requeue.start_run(created_by="someone", entry_ids=[e.pk for e in entries])
    page = admin_client_.get(f"/admin/dlq/requeuerun/{run.pk}/change/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert 'id="cancel-run"' in page
    assert '<progress value="0" max="2"' in page
    response = admin_client_.post(f"/admin/dlq/requeuerun/{run.pk}/cancel/", follow=True)
    assert f"Requeue run {run.pk}: cancel requested." in messages_of(response)
    run.refresh_from_db()
    assert run.status == RequeueRun.Status.CANCELLED
    assert OperatorAction.objects.get(action=Action.CANCEL).requeue_run == run
    page = response.content.decode()
    assert 'http-equiv="refresh"' not in page
    assert 'id="cancel-run"' not in page
    assert requeue.execute_run(run.pk) is None  # a worker reaching it does nothing
    assert statuses(entries) == [Status.PENDING] * 2


def test_cancel_needs_the_requeue_permission_and_a_post(login, admin_client_, fail):
    run = requeue.start_run(created_by="someone", entry_ids=[fail(1)[0].pk])
    viewer = login("dlq.view_requeuerun")
    assert viewer.get(f"/admin/dlq/requeuerun/{run.pk}/change/").status_code == 200
    assert (
        'id="cancel-run"'
        not in viewer.get(f"/admin/dlq/requeuerun/{run.pk}/change/").content.decode()
    )
    assert viewer.post(f"/admin/dlq/requeuerun/{run.pk}/cancel/").status_code == 403
    assert admin_client_.get(f"/admin/dlq/requeuerun/{run.pk}/cancel/").status_code == 405
    run.refresh_from_db()
    assert run.status == RequeueRun.Status.QUEUED


def test_run_list_shows_progress_columns_and_is_read_only(admin_client_, fail):
    run = requeue.start_run(created_by="someone", entry_ids=[fail(1)[0].pk], rate_limit=2.5)
    response = admin_client_.get("/admin/dlq/requeuerun/")
    assert list(response.context["cl"].result_list) == [run]
    content = response.content.decode()
    for header in ("Total", "Done", "Succeeded", "Failed", "Skipped", "Dry run", "Rate limit"):
        assert header in content
    assert admin_client_.get("/admin/dlq/requeuerun/add/").status_code == 403
    assert admin_client_.post(f"/admin/dlq/requeuerun/{run.pk}/delete/").status_code == 403


def test_audit_trail_lists_every_action_read_only_and_filters_by_action(admin_client_, fail):
    entries = fail(2)
    post_action(admin_client_, "discard_selected", entries[:1])
    post_action(admin_client_, "requeue_selected", entries[1:])
    response = admin_client_.get("/admin/dlq/operatoraction/")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2
    content = response.content.decode()
    assert admin_client_.user.username in content
    response = admin_client_.get("/admin/dlq/operatoraction/", {"action__exact": "discard"})
    [row] = response.context["cl"].result_list
    assert row.action == Action.DISCARD
    assert admin_client_.get(f"/admin/dlq/operatoraction/{row.pk}/change/").status_code == 200
    assert admin_client_.get("/admin/dlq/operatoraction/add/").status_code == 403
    admin_client_.post(f"/admin/dlq/operatoraction/{row.pk}/change/", {"outcome": "forged"})
    admin_client_.post(f"/admin/dlq/operatoraction/{row.pk}/delete/", {"post": "yes"})
    row.refresh_from_db()
    assert row.outcome == "1 entries discarded"
    assert response.context["action_form"] is None  # no bulk delete either


# --- error groups and jobs ---------------------------------------------------


def post_group_action(client, action, groups):
    return client.post(
        "/admin/errors/errorgroup/",
        {"action": action, "_selected_action": [g.pk for g in groups]},
        follow=True,
    )


@pytest.mark.parametrize(("action", "status"), [("resolve", "resolved"), ("ignore", "ignored")])
def test_resolve_and_ignore_set_the_group_status_and_record_it(admin_client_, fail, action, status):
    group = fail(1)[0].error_group
    post_group_action(admin_client_, action, [group])
    group.refresh_from_db()
    assert group.status == status
    assert OperatorAction.objects.get(action=action).count == 1


def test_requeue_group_starts_one_run_per_group_of_its_pending_entries(
    admin_client_, make_job, job, fail
):
    other = make_job("other", processor="json_schema", config={"schema": STRICT})
    mine, theirs = fail(2), fail(1, target=other)
    groups = [mine[0].error_group, theirs[0].error_group]
    response = post_group_action(admin_client_, "requeue_group", groups)
    assert "Started 2 requeue runs" in messages_of(response)[0]
    runs = list(RequeueRun.objects.order_by("pk"))
    assert [run.filters for run in runs] == [{"error_group": g.pk} for g in groups]
    assert [run.total for run in runs] == [2, 1]
    relax(job)
    for run in runs:
        requeue.execute_run(run.pk)
    assert statuses(mine) == [Status.RESOLVED] * 2
    assert statuses(theirs) == [Status.PENDING]
    assert ErrorGroup.objects.get(pk=groups[0].pk).status == ErrorGroup.Status.RESOLVED


def test_requeue_group_of_one_group_opens_its_run(admin_client_, fail):
    group = fail(1)[0].error_group
    response = post_group_action(admin_client_, "requeue_group", [group])
    run = RequeueRun.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/dlq/requeuerun/{run.pk}/change/"


def test_group_actions_need_their_permissions(login, fail):
    group = fail(1)[0].error_group
    viewer = login("errors.view_errorgroup")
    choices = viewer.get("/admin/errors/errorgroup/").context["action_form"]
    assert choices is None  # no action at all: no resolve, ignore, requeue or delete
    post_group_action(viewer, "requeue_group", [group])
    post_group_action(viewer, "resolve", [group])
    assert not RequeueRun.objects.exists()
    assert ErrorGroup.objects.get(pk=group.pk).status == ErrorGroup.Status.UNRESOLVED
    triager = login("errors.view_errorgroup", "errors.change_errorgroup")
    actions = triager.get("/admin/errors/errorgroup/").context["action_form"].fields["action"]
    assert [name for name, _ in actions.choices if name] == ["resolve", "ignore"]


def test_group_page_links_its_history_and_its_pending_entries(admin_client_, fail):
    entries = fail(2)
    group = entries[0].error_group
    content = admin_client_.get(f"/admin/errors/errorgroup/{group.pk}/change/").content.decode()
    assert f'href="/errors/{group.pk}/"' in content
    assert f"?error_group__id__exact={group.pk}&amp;status__exact=pending" in content
    assert "2 pending entries" in content
    for text in ("is a required property", "RecordInvalid", "Unresolved"):
        assert text in content


def test_job_pages_link_to_dlq_health_and_keep_live_counters(admin_client_, job, fail):
    fail(2)
    content = admin_client_.get("/admin/dlq/job/").content.decode()
    assert 'href="/dlq/health/"' in content
    assert "2 / 100000" in content
    assert "HEALTHY" in content
    content = admin_client_.get(f"/admin/dlq/job/{job.pk}/change/").content.decode()
    assert 'href="/dlq/health/"' in content
    assert "Live counters" in content
