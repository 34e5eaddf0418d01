"""The operator pages check the admin's model permissions (issue 13, finding 2).

Staff without a permission get a 403 page; whoever may open a page sees only
the parts (and the links) whose models they may view as well.
"""

import pytest

from tests.conftest import BAD, GOOD

VIEW_GROUPS = "errors.view_errorgroup"
VIEW_OCCURRENCES = "errors.view_erroroccurrence"
VIEW_ENTRIES = "dlq.view_dlqentry"
VIEW_JOBS = "dlq.view_job"


@pytest.fixture
def group(make_job, run_batch):
    """One error group of job "orders", with a record pending in the DLQ."""
    from errors.models import ErrorGroup

    run_batch(make_job("orders"), [BAD, GOOD])
    return ErrorGroup.objects.get()


def pages(group):
    return ["/errors/", f"/errors/{group.pk}/", "/dlq/health/"]


def test_staff_without_permissions_get_a_403_page_on_each_operator_page(login, group):
    client = login()
    for url in pages(group):
        response = client.get(url)
        assert response.status_code == 403, url
        body = response.content.decode()
        assert 'id="permission-denied"' in body, url
        assert '<div id="site-name"><a href="/admin/">Velo</a></div>' in body, url
        assert "Missing required column" not in body, url


@pytest.mark.parametrize(
    ("url", "needs"),
    [("/errors/", VIEW_GROUPS), ("/errors/{pk}/", VIEW_GROUPS), ("/dlq/health/", VIEW_JOBS)],
)
def test_the_one_needed_permission_opens_a_page(login, group, url, needs):
    response = login(needs).get(url.format(pk=group.pk))
    assert response.status_code == 200


@pytest.mark.parametrize("url", ["/errors/", "/errors/{pk}/", "/dlq/health/"])
def test_another_permission_does_not_open_a_page(login, group, url):
    # view_job opens the health page only; view_errorgroup the error pages only.
    other = VIEW_JOBS if url.startswith("/errors/") else VIEW_GROUPS
    response = login(other, VIEW_ENTRIES, VIEW_OCCURRENCES).get(url.format(pk=group.pk))
    assert response.status_code == 403


@pytest.mark.parametrize("url", ["/errors/", "/errors/1/", "/dlq/health/"])
def test_anonymous_and_non_staff_still_go_to_the_login(client, django_user_model, url):
    assert client.get(url)["Location"] == f"/admin/login/?next={url}"
    user = django_user_model.objects.create_user("someone", password="pw")
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    assert client.get(url)["Location"] == f"/admin/login/?next={url}"


def test_the_group_page_hides_dlq_entries_and_occurrences_without_their_permissions(login, group):
    body = login(VIEW_GROUPS).get(f"/errors/{group.pk}/").content.decode()
    assert 'id="dlq-closed"' in body
    assert "/admin/dlq/dlqentry/" not in body
    assert 'id="recent-occurrences"' not in body
    assert 'id="occurrences-closed"' in body
    assert "/admin/errors/erroroccurrence/" not in body
    assert "/admin/dlq/requeuerun/" not in body


def test_the_group_page_shows_what_its_permissions_allow(login, group):
    client = login(VIEW_GROUPS, VIEW_ENTRIES, VIEW_OCCURRENCES)
    body = client.get(f"/errors/{group.pk}/").content.decode()
    assert 'id="dlq-closed"' not in body
    assert "/admin/dlq/dlqentry/" in body
    assert 'id="recent-occurrences"' in body
    assert "/admin/errors/erroroccurrence/" in body


def test_the_health_page_without_group_or_entry_permissions_links_to_neither(login, group):
    response = login(VIEW_JOBS).get("/dlq/health/")
    body = response.content.decode()
    assert response.context["rows"][0].top_errors == []
    assert 'href="/errors/' not in body
    assert "/admin/dlq/dlqentry/" not in body
    assert "needs the permission to view error groups" in body


def test_the_health_page_with_every_permission_links_to_groups_and_entries(login, group):
    body = login(VIEW_JOBS, VIEW_GROUPS, VIEW_ENTRIES).get("/dlq/health/").content.decode()
    assert f"/errors/{group.pk}/" in body
    assert "/admin/dlq/dlqentry/?job__id__exact=" in body


@pytest.mark.parametrize(
    ("perms", "shown"),
    [
        ((), []),
        ((VIEW_GROUPS,), ["/errors/"]),
        ((VIEW_JOBS,), ["/dlq/health/"]),
        ((VIEW_GROUPS, VIEW_JOBS), ["/errors/", "/dlq/health/"]),
    ],
)
def test_the_admin_index_lists_only_the_pages_the_user_may_open(login, db, perms, shown):
    body = login(*perms).get("/admin/").content.decode()
    for url in ("/errors/", "/dlq/health/"):
        assert (f'<a href="{url}">' in body) == (url in shown), url
    assert ('id="operator-pages"' in body) == bool(shown)


def test_the_entry_pages_link_to_the_group_page_only_for_group_viewers(login, group):
    from dlq.models import DLQEntry

    entry = DLQEntry.objects.get()
    urls = [
        f"/admin/dlq/dlqentry/{entry.pk}/change/",
        f"/admin/dlq/dlqentry/?error_group__id__exact={group.pk}",
    ]
    client = login(VIEW_ENTRIES)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert 'id="group-page"' not in response.content.decode(), url
    client = login(VIEW_ENTRIES, VIEW_GROUPS)
    for url in urls:
        assert 'id="group-page"' in client.get(url).content.decode(), url


def test_the_status_buttons_need_the_triage_permission(login, group):
    response = login(VIEW_GROUPS).post(f"/dlq/groups/{group.pk}/status/", {"status": "resolved"})
    assert response.status_code == 403
    assert 'id="permission-denied"' in response.content.decode()
