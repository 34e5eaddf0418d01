"""The error groups' admin: resolve, ignore and requeue_group, the group page, hostile templates."""

import pytest

from dlq import requeue
from dlq.models import OperatorAction, RequeueRun
from errors.models import ErrorGroup
from tests.dlq.factories import relax

from .helpers import (
    ESCAPED_SCRIPT,
    HOSTILE_MESSAGE,
    LIST,
    STRICT,
    Status,
    messages_of,
    post_group_action,
    statuses,
)


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
    assert [name for name, _ in actions.choices if name] == [
        "resolve",
        "ignore",
        "merge_groups",
        "unmerge_group",
    ]


def test_group_page_links_its_history_and_its_pending_entries(admin_client_, fail):
    entries = fail(2)
    group = entries[0].error_group
    content = admin_client_.get(f"/admin/errors/errorgroup/{group.pk}/change/").content.decode()
    assert f'href="/errors/{group.pk}/"' in content
    assert f"?error_group__id__exact={group.pk}&amp;status__exact=pending" in content
    assert "2 pending entries" in content
    for text in ("missing (required)", "RecordInvalid", "Unresolved"):
        assert text in content


def test_error_group_list_filters_by_status(admin_client_, group):
    response = admin_client_.get("/admin/errors/errorgroup/?status__exact=unresolved")
    assert list(response.context["cl"].result_list) == [group]
    response = admin_client_.get("/admin/errors/errorgroup/?status__exact=resolved")
    assert list(response.context["cl"].result_list) == []


def test_error_group_list_searches_templates_and_filters_by_job(
    admin_client_, fail, make_job, run_batch
):
    fail(2)  # orders: "Field 'symbol': missing (required)"
    payments = make_job("payments")
    run_batch(payments, [{"symbol": "A"}])  # "Missing required column 'price'"
    orders_group = ErrorGroup.objects.get(job_name="orders")

    listing = admin_client_.get("/admin/errors/errorgroup/?job_name=orders")
    assert list(listing.context["cl"].result_list) == [orders_group]
    assert "?job_name=payments" in listing.content.decode()  # the sidebar offers each job

    found = admin_client_.get("/admin/errors/errorgroup/", {"q": "column 'price'"})
    assert [g.job_name for g in found.context["cl"].result_list] == ["payments"]
    assert "Waiting in the DLQ" in listing.content.decode()


def test_error_occurrences_filter_by_group(admin_client_, occurrence):
    response = admin_client_.get(
        f"/admin/errors/erroroccurrence/?group__id__exact={occurrence.group_id}"
    )
    assert list(response.context["cl"].result_list) == [occurrence]
