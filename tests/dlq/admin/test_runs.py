"""Requeue runs in the admin: progress, read-only, and cancel with the requeue permission."""

from dlq import requeue
from dlq.actors import Actor
from dlq.models import OperatorAction, RequeueRun
from dlq.requeue import RequeueOptions, RequeueScope

from .helpers import Action, Status, messages_of, statuses


def test_cancel_button_cancels_a_queued_run(admin_client_, fail):
    entries = fail(2)
    run = requeue.start_run(
        RequeueScope.of_ids([e.pk for e in entries]), RequeueOptions(), Actor("someone", "admin")
    )
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
    run = requeue.start_run(
        RequeueScope.of_ids([fail(1)[0].pk]), RequeueOptions(), Actor("someone", "admin")
    )
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
    run = requeue.start_run(
        RequeueScope.of_ids([fail(1)[0].pk]),
        RequeueOptions(rate_limit=2.5),
        Actor("someone", "admin"),
    )
    response = admin_client_.get("/admin/dlq/requeuerun/")
    assert list(response.context["cl"].result_list) == [run]
    content = response.content.decode()
    for header in ("Total", "Done", "Succeeded", "Failed", "Skipped", "Dry run", "Rate limit"):
        assert header in content
    assert admin_client_.get("/admin/dlq/requeuerun/add/").status_code == 403
    assert admin_client_.post(f"/admin/dlq/requeuerun/{run.pk}/delete/").status_code == 403
