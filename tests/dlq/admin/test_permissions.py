"""Who may do what: requeue and discard need their permissions; anonymous users log in first."""

from dlq.models import RequeueRun

from .helpers import LIST, Status, post_action, statuses


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
    admin_client_ = login("dlq.view_dlqentry", "dlq.requeue_dlqentry")
    response = admin_client_.get(LIST, {"job__id__exact": job.pk})
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "requeue_selected" in actions
    assert "discard_selected" not in actions
    assert response.context["requeue_matching_url"]
    assert admin_client_.post(f"{LIST}{entries[0].pk}/discard/").status_code == 403
    # Whoever may start a run is shown the way to its page and may watch it.
    response = post_action(admin_client_, "requeue_selected", entries)
    assert response.status_code == 200
    run = RequeueRun.objects.get()
    assert f'href="/admin/dlq/requeuerun/{run.pk}/change/"' in response.content.decode()
    assert admin_client_.get(f"/admin/dlq/requeuerun/{run.pk}/change/").status_code == 200


def test_discard_permission_allows_discarding_only(login, fail):
    entries = fail(1)
    admin_client_ = login("dlq.view_dlqentry", "dlq.discard_dlqentry")
    assert admin_client_.post(f"{LIST}{entries[0].pk}/requeue/").status_code == 403
    admin_client_.post(f"{LIST}{entries[0].pk}/discard/")
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


def test_anonymous_users_are_sent_to_the_login_page(client, db):
    response = client.get("/admin/dlq/dlqentry/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
