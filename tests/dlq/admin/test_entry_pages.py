"""An entry's own pages (Requeue, Edit payload and requeue, Discard) and "requeue all matching"."""

import json
from datetime import UTC
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from dlq import requeue
from dlq.models import (
    DLQAttempt,
    DLQEntry,
    OperatorAction,
    RequeueRun,
)
from errors.context import DeploymentContext
from tests.conftest import BAD
from tests.dlq.factories import relax

from .helpers import (
    LIST,
    STRICT,
    Action,
    Status,
    attempt_history,
    matching_url,
    messages_of,
    original_attempt_row,
    statuses,
    worked,
)


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
    # Started from the list: back to it as it was filtered, the run's page one click away.
    assert response.redirect_chain[-1][0] == f"{LIST}?job__id__exact={job.pk}&status__exact=pending"
    assert f'href="/admin/dlq/requeuerun/{run.pk}/change/"' in response.content.decode()
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


def test_requeue_button_resolves_an_entry_once_the_cause_is_fixed(admin_client_, job, fail):
    [entry] = fail(1)
    relax(job)
    response = admin_client_.post(f"{LIST}{entry.pk}/requeue/", follow=True)
    run = RequeueRun.objects.get()
    assert response.redirect_chain[-1][0] == f"{LIST}{entry.pk}/change/?requeue_run={run.pk}"
    page = response.content.decode()
    assert f'href="/admin/dlq/requeuerun/{run.pk}/change/" id="requeue-run"' in page
    assert '<meta http-equiv="refresh"' in page
    assert statuses([entry]) == [Status.PENDING]  # the request ran nothing
    response = worked(admin_client_, response)
    assert response.redirect_chain[-1][0] == f"{LIST}{entry.pk}/change/"
    assert f"Entry {entry.pk} resolved." in messages_of(response)
    assert '<meta http-equiv="refresh"' not in response.content.decode()
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == (Status.RESOLVED, 2)
    assert OperatorAction.objects.get(action=Action.REQUEUE).count == 1
    assert "Requeue" in response.content.decode()  # the attempt history shows it


def on_node(settings, node_id):
    settings.VELO_DEPLOYMENT = DeploymentContext(node_id, "worker", "eu-west-1", "2.3.4")


def test_a_stored_failure_writes_no_attempt_row_yet_its_page_shows_the_original_attempt(
    admin_client_, fail, settings
):
    on_node(settings, "node-7")
    [entry] = fail(1)
    assert not DLQAttempt.objects.exists()
    page = admin_client_.get(f"{LIST}{entry.pk}/change/").content.decode()
    assert attempt_history(page) == [
        original_attempt_row(entry, "Field 'symbol': missing (required)", "node-7")
    ]


def test_a_failed_requeue_shows_the_original_attempt_then_the_requeue_and_stores_it_once(
    admin_client_, job, fail, settings
):
    on_node(settings, "node-7")
    [entry] = fail(1)
    job.config = {"schema": {"type": "object", "required": ["venue"]}}  # it fails otherwise now
    job.save()
    on_node(settings, "node-9")
    page = worked(admin_client_, admin_client_.post(f"{LIST}{entry.pk}/requeue/", follow=True))
    entry.refresh_from_db()
    assert entry.error_message == "Field 'venue': missing (required)"  # the entry's error moved on
    original = original_attempt_row(entry, "Field 'symbol': missing (required)", "node-7")
    [requeued] = DLQAttempt.objects.filter(kind=DLQAttempt.Kind.REQUEUE)
    again = (
        requeued.at.astimezone(UTC).isoformat(),
        "Requeue",
        requeued.started_by,
        "Failed",
        "Field 'venue': missing (required)",
        "-",
        "node-9",
    )
    assert attempt_history(page.content.decode()) == [original, again]

    page = worked(admin_client_, admin_client_.post(f"{LIST}{entry.pk}/requeue/", follow=True))
    rows = attempt_history(page.content.decode())
    assert rows[:2] == [original, again]
    assert [row[1:4] for row in rows[2:]] == [("Requeue", requeued.started_by, "Failed")]
    assert DLQAttempt.objects.filter(kind=DLQAttempt.Kind.ORIGINAL).count() == 1


def test_requeue_button_says_why_an_entry_failed_again(admin_client_, fail):
    [entry] = fail(1)
    response = worked(admin_client_, admin_client_.post(f"{LIST}{entry.pk}/requeue/", follow=True))
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
    response = worked(admin_client_, response)
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


def test_entry_and_batch_pages_are_titled_with_their_job(admin_client_, fail):
    entry = fail(1)[0]
    page = admin_client_.get(f"/admin/dlq/dlqentry/{entry.pk}/change/").content.decode()
    assert f"DLQ entry {entry.pk} of orders (pending)" in page
    page = admin_client_.get(f"/admin/dlq/batch/{entry.batch_id}/change/").content.decode()
    status = entry.batch.get_status_display().lower()
    assert f"batch {entry.batch_id} of orders ({status})" in page


def test_the_list_filter_survives_edit_and_requeue_and_discard(admin_client_, fail, job):
    first, second = fail(2)
    kept = f"job__id__exact%3D{job.pk}%26status__exact%3Dpending"
    page = admin_client_.get(
        f"/admin/dlq/dlqentry/{first.pk}/change/?_changelist_filters={kept}"
    ).content.decode()
    assert f"/edit-payload/?_changelist_filters={kept}" in page
    assert f"/discard/?_changelist_filters={kept}" in page

    edited = admin_client_.post(
        f"/admin/dlq/dlqentry/{first.pk}/edit-payload/?_changelist_filters={kept}",
        {"payload": '{"symbol": "ACME", "price": 1}'},
    )
    run = RequeueRun.objects.get()
    assert edited["Location"] == (
        f"/admin/dlq/dlqentry/{first.pk}/change/?_changelist_filters={kept}&requeue_run={run.pk}"
    )
    requeue.execute_run(run.pk)
    reported = admin_client_.get(edited["Location"])
    assert reported["Location"] == (
        f"/admin/dlq/dlqentry/{first.pk}/change/?_changelist_filters={kept}"
    )
    discarded = admin_client_.post(
        f"/admin/dlq/dlqentry/{second.pk}/discard/?_changelist_filters={kept}"
    )
    assert discarded["Location"].endswith(f"?_changelist_filters={kept}")
    back = admin_client_.get(discarded["Location"]).content.decode()
    # The entry page's Close leads back to the list as it was filtered.
    assert f"/admin/dlq/dlqentry/?job__id__exact={job.pk}&amp;status__exact=pending" in back


def test_a_rate_limit_out_of_range_is_a_form_error(admin_client_, job, fail):
    fail(2)
    listing = admin_client_.get(LIST, {"job__id__exact": job.pk, "status__exact": "pending"})
    url = matching_url(listing)
    for rate in ("0.000001", "100001"):
        response = admin_client_.post(url, {"rate_limit": rate, "canary_size": ""})
        assert response.status_code == 200
        assert "rate_limit" in response.context["form"].errors
    assert not RequeueRun.objects.exists()


def test_a_second_run_over_held_entries_is_refused_with_a_link_to_the_live_one(
    admin_client_, job, fail
):
    first, _ = fail(2)
    listing = admin_client_.get(LIST, {"job__id__exact": job.pk, "status__exact": "pending"})
    url = matching_url(listing)
    admin_client_.post(url, {"rate_limit": "", "canary_size": ""}, follow=True)
    live = RequeueRun.objects.get()
    link = f'<a href="/admin/dlq/requeuerun/{live.pk}/change/" id="holding-run">'
    again = admin_client_.post(url, {"rate_limit": "", "canary_size": ""})
    assert again.status_code == 409
    [message] = messages_of(again)
    assert message.startswith(f"Not started: requeue run {live.pk} (queued, 0 of 2 done)")
    assert link in message
    single = admin_client_.post(f"{LIST}{first.pk}/requeue/", follow=True)
    assert link in messages_of(single)[0]
    edit = admin_client_.post(
        f"{LIST}{first.pk}/edit-payload/", {"payload": '{"symbol": "A"}'}, follow=True
    )
    assert link in messages_of(edit)[0]
    assert DLQEntry.objects.get(pk=first.pk).original_payload is None  # the edit rolled back
    assert RequeueRun.objects.count() == 1
