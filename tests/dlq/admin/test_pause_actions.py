"""The job admin's pause and resume actions: change_job needed, resume asks the pace, audited."""

from dlq.ingest import submit_batch
from dlq.models import Job, OperatorAction
from dlq.pause import waiting_batches

from .helpers import messages_of

JOBS = "/admin/dlq/job/"


def act(client, action, jobs, **more):
    return client.post(
        JOBS, {"action": action, "_selected_action": [j.pk for j in jobs], **more}, follow=True
    )


def test_pause_then_resume_at_a_chosen_rate_is_audited_with_who(login, job):
    client = login("dlq.view_job", "dlq.change_job")
    response = act(client, "pause", [job])
    assert "Paused orders" in messages_of(response)[0]
    job.refresh_from_db()
    assert job.paused_at is not None
    assert b"paused <time" in client.get(f"{JOBS}{job.pk}/change/").content
    submit_batch(job, [{"symbol": "A", "price": 1}])
    # Resume asks the pace first, on its own page; nothing changes until it is posted.
    page = act(client, "resume", [job])
    assert page.templates[0].name == "admin/dlq/job/resume.html"
    assert b"1 batch waiting" in page.content
    assert Job.objects.get(pk=job.pk).paused_at is not None
    done = act(client, "resume", [job], rate="2.5")
    assert "2.5 batches a second" in messages_of(done)[0]
    job.refresh_from_db()
    assert (job.paused_at, job.release_rate) == (None, 2.5)
    assert waiting_batches([job]) == {job.pk: 1}
    assert b"resuming: sending what waited, oldest first, 2.5 batches a second" in (
        client.get(f"{JOBS}{job.pk}/change/").content
    )
    rows = OperatorAction.objects.order_by("pk").values_list("action", "username", "via")
    assert list(rows) == [
        ("pause", client.user.username, "admin"),
        ("resume", client.user.username, "admin"),
    ]


def test_a_rate_out_of_bounds_is_asked_again(login, job):
    client = login("dlq.view_job", "dlq.change_job")
    act(client, "pause", [job])
    page = act(client, "resume", [job], rate="0")
    assert page.templates[0].name == "admin/dlq/job/resume.html"
    assert Job.objects.get(pk=job.pk).paused_at is not None


def test_without_change_job_neither_action_is_offered_nor_done(login, job):
    client = login("dlq.view_job")
    listing = client.get(JOBS)
    assert listing.status_code == 200
    assert b'value="pause"' not in listing.content and b'value="resume"' not in listing.content
    act(client, "pause", [job])
    assert Job.objects.get(pk=job.pk).paused_at is None
    assert not OperatorAction.objects.exists()
