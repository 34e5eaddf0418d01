"""GET /api/v1/batches/<id>: a batch's status and counts, for tokens allowed on its job."""

import json
from datetime import datetime

import pytest
from django.test import Client

from dlq.ingest import submit_batch
from dlq.models import Batch
from dlq.tokens import revoke
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "job",
    "status",
    "records",
    "processed",
    "failed",
    "dlq_added",
    "dlq_rejected",
    "attempts",
    "created_at",
    "finished_at",
}


def url(batch_id):
    return f"/api/v1/batches/{batch_id}"


@pytest.fixture
def batch(job):
    return submit_batch(job, [GOOD, BAD])[0]


@pytest.fixture
def assert_refused(batch, assert_refused):
    """The refusal check, counting batches after this module's batch exists."""
    return assert_refused


def parse_utc(text):
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset().total_seconds() == 0
    return moment


def test_queued_batch_reports_its_status_and_zero_counts(client, batch, auth):
    response = client.get(url(batch.pk), HTTP_AUTHORIZATION=auth)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert body["id"] == batch.pk
    assert body["job"] == "orders"
    assert body["status"] == "queued"
    assert body["records"] == 2
    assert (body["processed"], body["failed"], body["attempts"]) == (0, 0, 0)
    assert (body["dlq_added"], body["dlq_rejected"]) == (0, 0)
    assert parse_utc(body["created_at"]) == batch.created_at
    assert body["created_at"].endswith("Z")
    assert body["finished_at"] is None


def test_finished_batch_reports_the_engine_totals_and_finish_time(client, job, auth, run_batch):
    batch = run_batch(job, [GOOD, GOOD, BAD])

    body = client.get(url(batch.pk), HTTP_AUTHORIZATION=auth).json()

    assert body["status"] == "partial"
    assert (body["processed"], body["failed"], body["attempts"]) == (3, 1, 1)
    assert (body["dlq_added"], body["dlq_rejected"]) == (1, 0)
    assert parse_utc(body["finished_at"]) == batch.finished_at


def test_status_url_from_a_submit_answers_with_that_batch(client, job, auth):
    submitted = client.post(
        "/api/v1/jobs/orders/batches",
        json.dumps([GOOD]),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    ).json()

    body = client.get(submitted["status_url"], HTTP_AUTHORIZATION=auth).json()

    assert body["id"] == submitted["batch_id"]
    assert body["records"] == 1


def test_token_limited_to_the_batch_job_may_read_it(client, job, batch, make_token):
    _, limited = make_token("orders-only", jobs=[job])

    assert client.get(url(batch.pk), HTTP_AUTHORIZATION=limited).status_code == 200


def test_missing_token_is_401(client, batch, assert_refused):
    response = client.get(url(batch.pk))

    assert_refused(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_token_is_401(client, batch, assert_refused):
    assert_refused(client.get(url(batch.pk), HTTP_AUTHORIZATION="Bearer velo_wrong"), 401)


def test_revoked_token_is_401(client, batch, make_token, assert_refused):
    token, header = make_token()
    revoke(token)

    assert_refused(client.get(url(batch.pk), HTTP_AUTHORIZATION=header), 401)


def test_token_limited_to_another_job_is_403(client, batch, make_job, make_token, assert_refused):
    _, other_only = make_token("payments-only", jobs=[make_job("payments")])

    response = client.get(url(batch.pk), HTTP_AUTHORIZATION=other_only)
    body = assert_refused(response, 403)

    # The batch's job is not named: a 403 does not tell whose batch it is.
    assert body == {"error": "this API token may not use this job", "detail": None}
    assert "orders" not in response.content.decode()


@pytest.mark.parametrize("batch_id", [999_999, 2**70])
def test_unknown_batch_id_is_a_json_404(client, auth, assert_refused, batch_id):
    body = assert_refused(client.get(url(batch_id), HTTP_AUTHORIZATION=auth), 404)

    assert body["detail"] == {"batch_id": batch_id}


def test_batch_id_that_is_not_a_number_is_a_json_404(client, auth, assert_refused):
    assert_refused(client.get("/api/v1/batches/abc", HTTP_AUTHORIZATION=auth), 404)


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_wrong_method_is_a_json_405_even_with_csrf_checks_on(batch, auth, assert_refused, method):
    browserlike = Client(enforce_csrf_checks=True)

    response = getattr(browserlike, method)(url(batch.pk), HTTP_AUTHORIZATION=auth)

    body = assert_refused(response, 405)
    assert body["detail"] == {"allowed": ["GET"]}
    assert Batch.objects.get().status == Batch.Status.QUEUED
