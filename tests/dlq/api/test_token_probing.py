"""A token limited to some jobs learns nothing about the others (issue 13, finding 9): a 403
that names no job, and the same answer for another job's things as for things that do not
exist. A token for every job, which could use them, still gets SPEC's 404 for unknown ones."""

import json

import pytest

from dlq.models import RequeueRun
from tests.dlq.factories import fail, schema_job

pytestmark = pytest.mark.django_db

NOT_ALLOWED = {"error": "this API token may not use this job", "detail": None}


@pytest.fixture
def world(make_token):
    """`orders` with a failed entry and a requeue run, and a token limited to `trades`."""
    orders, trades = schema_job("orders"), schema_job("trades")
    [entry] = fail(orders, 1)
    fail(trades, 1)
    _, every = make_token("ops", can_requeue=True)
    _, limited = make_token("trades-only", jobs=[trades], can_requeue=True)
    return {"entry": entry, "every": every, "limited": limited}


def answer(response):
    return response.status_code, response.json()


def submit(client, header, job):
    return client.post(
        f"/api/v1/jobs/{job}/batches",
        json.dumps([{"symbol": "ACME"}]),
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
    )


def requeue(client, header, body):
    return client.post(
        "/api/v1/dlq/requeue",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
    )


def get(client, header, path, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=header)


@pytest.mark.parametrize(
    "probe",
    [
        lambda c, h, job: submit(c, h, job),
        lambda c, h, job: get(c, h, "/api/v1/dlq", job=job),
        lambda c, h, job: get(c, h, "/api/v1/errors", job=job),
        lambda c, h, job: requeue(c, h, {"job": job, "dry_run": True}),
    ],
    ids=["submit", "dlq", "errors", "requeue"],
)
def test_a_limited_token_gets_the_same_403_for_another_job_and_for_no_job(client, world, probe):
    limited = world["limited"]

    forbidden = probe(client, limited, "orders")
    unknown = probe(client, limited, "no-such-job")

    assert answer(forbidden) == answer(unknown) == (403, NOT_ALLOWED)


def test_a_limited_token_cannot_tell_another_jobs_batch_from_no_batch(client, world):
    limited = world["limited"]

    theirs = get(client, limited, f"/api/v1/batches/{world['entry'].batch_id}")
    missing = get(client, limited, "/api/v1/batches/999999")

    assert answer(theirs) == answer(missing) == (403, NOT_ALLOWED)


def test_a_limited_token_cannot_tell_another_jobs_run_from_no_run(client, world):
    run = requeue(client, world["every"], {"job": "orders", "dry_run": True}).json()["run_id"]
    assert RequeueRun.objects.filter(pk=run).exists()

    theirs = get(client, world["limited"], f"/api/v1/requeue-runs/{run}")
    missing = get(client, world["limited"], "/api/v1/requeue-runs/999999")

    assert answer(theirs) == answer(missing)
    assert theirs.status_code == 403


def test_a_token_for_every_job_still_gets_404_for_what_does_not_exist(client, world):
    every = world["every"]

    assert submit(client, every, "no-such-job").status_code == 404
    assert get(client, every, "/api/v1/dlq", job="no-such-job").status_code == 404
    assert get(client, every, "/api/v1/batches/999999").status_code == 404
    assert get(client, every, "/api/v1/requeue-runs/999999").status_code == 404
    assert submit(client, every, "orders").status_code == 202
