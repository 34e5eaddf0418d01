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
    for header in ("Outcome", "Total", "Done", "Resolved", "Failed again", "Skipped", "Dry run"):
        assert header in content
    assert admin_client_.get("/admin/dlq/requeuerun/add/").status_code == 403
    assert admin_client_.post(f"/admin/dlq/requeuerun/{run.pk}/delete/").status_code == 403


def _run_page(client, run):
    return client.get(f"/admin/dlq/requeuerun/{run.pk}/change/").content.decode()


def test_a_run_that_resolved_nothing_does_not_read_like_a_success(admin_client_, fail):
    entries = fail(3)  # the cause is not fixed: every entry fails again
    run = requeue.run_here(
        RequeueScope.of_ids([e.pk for e in entries]), RequeueOptions(), Actor("ops", "admin")
    )
    page = _run_page(admin_client_, run)
    assert (
        '<span class="velo-status critical" id="run-outcome">'
        "Finished: none resolved, all 3 failed again</span>"
    ) in page
    failed_url = f"/admin/dlq/dlqattempt/?requeue_run__id__exact={run.pk}&amp;outcome__exact=failed"
    assert f'<a href="{failed_url}">3</a>' in page
    attempts = admin_client_.get(failed_url.replace("&amp;", "&"))
    assert attempts.status_code == 200
    listed = list(attempts.context["cl"].result_list)
    assert len(listed) == 3 and {a.outcome for a in listed} == {"failed"}
    assert "missing (required)" in attempts.content.decode()  # the error column
    assert "entries/s" in page


def test_a_canary_stop_says_so(admin_client_, fail, settings):
    entries = fail(6)
    run = requeue.run_here(
        RequeueScope.of_ids([e.pk for e in entries]),
        RequeueOptions(canary_size=2),
        Actor("ops", "admin"),
    )
    assert run.status == RequeueRun.Status.CANCELLED  # the API's status stays SPEC's
    assert str(run) == f"requeue run {run.pk}: stopped by the canary: 2 of 2 failed again"
    listing = admin_client_.get("/admin/dlq/requeuerun/").content.decode()
    assert "Stopped by the canary: 2 of 2 failed again" in listing
    assert ">Cancelled</span>" not in listing  # (the status filter still offers "Cancelled")


def test_a_run_page_links_what_its_scope_names(admin_client_, fail, job):
    entries = fail(2)
    group_id = entries[0].error_group_id
    run = requeue.run_here(
        RequeueScope.matching(job=job.name, error_group=group_id),
        RequeueOptions(),
        Actor("ops", "admin"),
    )
    page = _run_page(admin_client_, run)
    assert f'<a href="/errors/{group_id}/">error group #{group_id}</a>' in page
    assert f'<a href="/admin/dlq/job/{job.pk}/change/">job {job.name}</a>' in page
    assert (
        f"/admin/dlq/dlqentry/?job__id__exact={job.pk}&amp;error_group__id__exact={group_id}"
        in page
    )
