"""The audit trail: every operator action listed, read-only, filterable by action."""

from .helpers import Action, post_action


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
