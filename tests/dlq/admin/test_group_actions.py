"""An error group's page acts: Resolve, Ignore and Requeue, a sample record, links both ways."""

from dlq import requeue
from dlq.actors import Actor
from dlq.models import OperatorAction, RequeueRun
from dlq.requeue import RequeueOptions, RequeueScope
from errors.models import ErrorGroup

from .helpers import messages_of

ALL = ("dlq.requeue_dlqentry", "errors.change_errorgroup", "dlq.view_dlqentry")


def group_page(client, group):
    return client.get(f"/errors/{group.pk}/").content.decode()


def test_resolve_from_the_group_page_is_audited_and_comes_back_to_it(login, fail):
    fail(2)
    group = ErrorGroup.objects.get()
    client = login(*ALL)
    page = group_page(client, group)
    assert 'id="group-resolved"' in page and 'id="group-ignored"' in page

    response = client.post(f"/dlq/groups/{group.pk}/status/", {"status": "resolved"}, follow=True)

    assert response.redirect_chain[-1][0] == f"/errors/{group.pk}/"
    assert f"Error group #{group.pk} marked resolved." in messages_of(response)
    group.refresh_from_db()
    assert group.status == "resolved"
    action = OperatorAction.objects.get(action="resolve")
    assert action.details == {"error_groups": [group.pk]}
    assert 'id="group-resolved" disabled' in response.content.decode()


def test_acting_needs_the_permission_and_a_post(login, fail):
    fail(1)
    group = ErrorGroup.objects.get()
    viewer = login("dlq.view_dlqentry")
    page = group_page(viewer, group)
    assert 'id="group-resolved"' not in page
    assert 'id="group-requeue"' not in page
    assert viewer.post(f"/dlq/groups/{group.pk}/status/", {"status": "ignored"}).status_code == 403
    assert login(*ALL).get(f"/dlq/groups/{group.pk}/status/").status_code == 405
    unknown = login(*ALL).post(f"/dlq/groups/{group.pk}/status/", {"status": "deleted"})
    assert unknown.status_code == 302
    group.refresh_from_db()
    assert group.status == "unresolved"


def test_requeue_goes_through_the_confirmation_page_with_a_canary(login, fail):
    entries = fail(3)
    group = ErrorGroup.objects.get()
    client = login(*ALL)
    page = group_page(client, group)
    start = page.index('id="group-requeue" href="') + len('id="group-requeue" href="')
    url = page[start : page.index('"', start)].replace("&amp;", "&")
    assert url.startswith("/admin/dlq/dlqentry/requeue-matching/?error_group__id__exact=")

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert 'name="canary_size" value="10"' in confirm.content.decode()
    response = client.post(url, {"canary_size": "10"})
    run = RequeueRun.objects.get()
    assert response["Location"] == f"/admin/dlq/requeuerun/{run.pk}/change/"
    assert (run.filters["error_group"], run.canary_size, run.total) == (group.pk, 10, 3)
    assert run.max_id >= entries[-1].pk


def test_the_group_page_shows_its_newest_record_and_links_both_ways(login, fail):
    entries = fail(2)
    group = ErrorGroup.objects.get()
    run = requeue.run_here(
        RequeueScope.matching(error_group=group.pk), RequeueOptions(), Actor("ops", "admin")
    )
    client = login(*ALL, "dlq.view_requeuerun", "errors.view_erroroccurrence")
    page = group_page(client, group)
    assert f"entry #{entries[-1].pk}</a>" in page
    assert "&quot;price&quot;: 1" in page  # the record that failed, with its fields
    assert f"?group__id__exact={group.pk}" in page  # its occurrences
    runs_link = f"/admin/dlq/requeuerun/?error_group={group.pk}"
    assert runs_link in page
    listed = client.get(runs_link).context["cl"].result_list
    assert list(listed) == [run]
    admin_page = client.get(f"/admin/errors/errorgroup/{group.pk}/change/").content.decode()
    assert 'id="group-actions"' in admin_page  # the admin's group page acts the same
