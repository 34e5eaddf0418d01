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


def test_audit_rows_and_batches_link_to_what_they_name(admin_client_, fail):
    from dlq import triage
    from dlq.actors import Actor
    from dlq.models import DLQEntry, OperatorAction
    from errors.models import ErrorGroup

    entries = fail(2)
    triage.discard(DLQEntry.objects.filter(pk=entries[0].pk), actor=Actor("ops", "admin"))
    group = ErrorGroup.objects.get()
    triage.set_group_status(ErrorGroup.objects.all(), "ignored", actor=Actor("ops", "admin"))

    discard = OperatorAction.objects.get(action="discard")
    page = admin_client_.get(f"/admin/dlq/operatoraction/{discard.pk}/change/").content.decode()
    assert f'<a href="/admin/dlq/dlqentry/{entries[0].pk}/change/">{entries[0].pk}</a>' in page
    ignore = OperatorAction.objects.get(action="ignore")
    page = admin_client_.get(f"/admin/dlq/operatoraction/{ignore.pk}/change/").content.decode()
    assert f'<a href="/errors/{group.pk}/">group #{group.pk}</a>' in page

    batch = admin_client_.get(f"/admin/dlq/batch/{entries[0].batch_id}/change/").content.decode()
    assert (
        f'?batch__id__exact={entries[0].batch_id}&amp;status__exact=all" id="batch-entries">'
        "its 2 DLQ entries"
    ) in batch
