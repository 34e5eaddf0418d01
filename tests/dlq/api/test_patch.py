"""POST /api/v1/dlq/patch: fix the selected payloads and requeue them as a run (issue 11)."""

import json

import pytest

from dlq.models import DLQEntry, RequeueRun
from dlq.requeue import execute_run
from tests.dlq.api.test_requeue_runs import refused
from tests.dlq.factories import fail, schema_job

pytestmark = pytest.mark.django_db

URL = "/api/v1/dlq/patch"
ADD_SYMBOL = [{"op": "add", "path": "/symbol", "value": "ACME"}]


def post(client, auth, body):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", HTTP_AUTHORIZATION=auth)


def table():
    return list(DLQEntry.objects.order_by("pk").values())


def test_a_patch_by_filter_starts_a_run_that_fixes_and_resolves(client, orders, requeuer):
    entries = fail(orders, 3)

    response = post(client, requeuer, {"job": "orders", "patch": ADD_SYMBOL, "canary_size": 2})

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"run_id", "total", "status_url"}
    assert body["total"] == 3
    run = RequeueRun.objects.get(pk=body["run_id"])
    assert (run.fix, run.canary_size) == ({"patch": ADD_SYMBOL, "convert": []}, 2)
    execute_run(run.pk)
    status = client.get(body["status_url"], HTTP_AUTHORIZATION=requeuer).json()
    assert (status["status"], status["succeeded"], status["not_fixed"]) == ("finished", 3, 0)
    for entry in entries:
        entry.refresh_from_db()
        assert entry.status == "resolved"
        assert entry.payload["symbol"] == "ACME"
        assert "symbol" not in entry.original_payload


def test_a_dry_run_returns_the_sample_diffs_and_changes_nothing(client, orders, requeuer):
    entries = fail(orders, 4)
    rows, runs = table(), RequeueRun.objects.count()
    patch = [
        {"op": "test", "path": "/n", "value": 1},
        {"op": "add", "path": "/symbol", "value": "ACME"},
    ]

    response = post(
        client,
        requeuer,
        {"ids": [e.pk for e in entries], "patch": patch, "dry_run": True, "sample_size": 3},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["dry_run"], body["total"]) == (True, 4)
    assert [item["id"] for item in body["sample"]] == [e.pk for e in entries[:3]]
    assert [item["applies"] for item in body["sample"]] == [False, True, False]
    fixed = body["sample"][1]
    assert (fixed["before"], fixed["after"]) == ({"n": 1}, {"n": 1, "symbol": "ACME"})
    assert fixed["diff"] == [{"op": "add", "path": "/symbol", "value": "ACME"}]
    assert "test does not hold" in body["sample"][0]["reason"]
    assert table() == rows
    assert RequeueRun.objects.count() == runs


@pytest.mark.parametrize(
    "body",
    [
        {"job": "orders"},
        {"job": "orders", "patch": None},
        {"job": "orders", "patch": None, "dry_run": True},
        {"job": "orders", "convert": [{"path": "/a~2b", "to": "number"}]},
        {"job": "orders", "patch": "add /symbol"},
        {"job": "orders", "patch": [{"op": "add", "path": "/symbol"}]},
        {"job": "orders", "patch": [{"op": "delete", "path": "/symbol"}]},
        {"job": "orders", "convert": [{"path": "/price", "to": "euros"}]},
        {"job": "orders", "patch": ADD_SYMBOL, "sample_size": 0},
        {"job": "orders", "patch": ADD_SYMBOL, "sample_size": True},
        {"job": "orders", "patch": ADD_SYMBOL, "rate_limit": -1},
        {"job": "orders", "patch": ADD_SYMBOL, "shadow": True},
        {"patch": ADD_SYMBOL},
    ],
)
def test_a_bad_fix_is_a_400_that_changes_nothing(client, orders, requeuer, body):
    fail(orders, 2)
    rows = table()
    refused(post(client, requeuer, body), 400)
    assert table() == rows
    assert not RequeueRun.objects.exists()


def test_only_a_can_requeue_token_may_fix(client, orders, make_token):
    fail(orders, 1)
    reader = make_token("reader")[1]
    refused(post(client, reader, {"job": "orders", "patch": ADD_SYMBOL}), 403)
    refused(post(client, "Bearer nope", {"job": "orders", "patch": ADD_SYMBOL}), 401)
    assert not RequeueRun.objects.exists()


def test_a_limited_token_may_not_fix_another_jobs_entries(client, orders, make_token):
    other = schema_job("other")
    theirs = fail(other, 1)
    fail(orders, 1)
    limited = make_token("limited", jobs=[orders], can_requeue=True)[1]
    refused(post(client, limited, {"ids": [theirs[0].pk], "patch": ADD_SYMBOL}), 403)
    refused(post(client, limited, {"job": "other", "patch": ADD_SYMBOL, "dry_run": True}), 403)
    assert not RequeueRun.objects.exists()
