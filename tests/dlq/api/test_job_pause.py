"""POST /api/v1/jobs/<job>/pause and /resume: an operator's token, for its own jobs only."""

import json

import pytest

from dlq.models import Batch, Job, OperatorAction
from tests.conftest import GOOD

pytestmark = pytest.mark.django_db


def post(client, auth, job, action, body=None):
    return client.post(
        f"/api/v1/jobs/{job}/{action}",
        json.dumps(body) if body is not None else "",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


def test_a_paused_job_still_takes_batches_then_resumes_at_a_rate(client, orders, requeuer):
    paused = post(client, requeuer, "orders", "pause")
    assert paused.status_code == 200, paused.content
    assert paused.json() == {
        "job": "orders",
        "paused": True,
        "changed": True,
        "waiting": 0,
        "rate": None,
    }
    submitted = client.post(
        "/api/v1/jobs/orders/batches",
        json.dumps([GOOD]),
        content_type="application/json",
        HTTP_AUTHORIZATION=requeuer,
    )
    assert submitted.status_code == 202
    assert Batch.objects.get().dispatched_at is None  # kept, not sent
    assert post(client, requeuer, "orders", "pause").json()["changed"] is False
    resumed = post(client, requeuer, "orders", "resume", {"rate": 3})
    assert resumed.json() == {
        "job": "orders",
        "paused": False,
        "changed": True,
        "waiting": 1,
        "rate": 3.0,
    }
    assert list(OperatorAction.objects.values_list("action", "username", "via")) == [
        ("pause", "api:requeuer", "api"),
        ("resume", "api:requeuer", "api"),
    ]


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_tokens_that_may_not_act_as_operators_are_refused_and_nothing_changes(
    client, orders, make_token, make_job, action
):
    Job.objects.filter(pk=orders.pk).update(paused_at="2026-01-01T00:00:00Z")
    before = Job.objects.get(pk=orders.pk).paused_at
    submitter = make_token("ingest")[1]
    other_jobs = make_token("other", jobs=[make_job("elsewhere")], can_requeue=True)[1]
    assert post(client, "", "orders", action).status_code == 401
    assert post(client, submitter, "orders", action).status_code == 403
    assert post(client, other_jobs, "orders", action).status_code == 403
    assert post(client, other_jobs, "nobody", action).status_code == 403
    assert Job.objects.get(pk=orders.pk).paused_at == before
    assert not OperatorAction.objects.exists()


@pytest.mark.parametrize(
    "body", [[1], {"rate": 0}, {"rate": "5"}, {"rate": True}, {"rate": 1e6}, {"speed": 1}]
)
def test_a_bad_resume_body_is_a_400_and_changes_nothing(client, orders, requeuer, body):
    post(client, requeuer, "orders", "pause")
    response = post(client, requeuer, "orders", "resume", body)
    assert response.status_code == 400, response.content
    assert Job.objects.get(pk=orders.pk).paused_at is not None


def test_an_unknown_job_is_a_404_for_a_token_of_every_job(client, requeuer):
    assert post(client, requeuer, "nobody", "pause").status_code == 404
