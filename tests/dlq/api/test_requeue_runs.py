"""POST /api/v1/dlq/requeue and GET /api/v1/requeue-runs/<id> (SPEC §6, §7).

No worker runs here: start_run sends a run to the broker on commit, which the
test transaction never reaches, so each test works its run with execute_run.
"""

import json

import pytest

from dlq.models import DLQEntry, JobCounters, OperatorAction, RequeueRun
from dlq.requeue import execute_run
from tests.dlq.factories import fail, relax, schema_job

pytestmark = pytest.mark.django_db

URL = "/api/v1/dlq/requeue"
RUN_KEYS = {"id", "status", "total", "done", "succeeded", "failed", "dry_run"}


def refused(response, status):
    """The API's JSON error shape with `status`."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"]
    return body


def post_refused(client, auth, body, status):
    """POST `body`, check the refusal, and that it started no run."""
    runs_before = RequeueRun.objects.count()
    answer = refused(post(client, auth, body), status)
    assert RequeueRun.objects.count() == runs_before
    return answer


def post(client, auth, body):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", HTTP_AUTHORIZATION=auth)


def statuses(entries):
    return [DLQEntry.objects.get(pk=e.pk).status for e in entries]


def test_requeue_by_ids_answers_202_with_the_run_and_resolves_them(client, orders, requeuer):
    entries = fail(orders, 3)
    relax(orders)

    response = post(client, requeuer, {"ids": [entries[0].pk, entries[2].pk]})

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"run_id", "total", "status_url"}
    assert body["total"] == 2
    assert body["status_url"] == f"http://testserver/api/v1/requeue-runs/{body['run_id']}"
    assert response["Location"] == body["status_url"]
    run = RequeueRun.objects.get(pk=body["run_id"])
    assert run.entry_ids == [entries[0].pk, entries[2].pk]
    assert run.created_by == "api:requeuer"
    action = OperatorAction.objects.get(requeue_run=run)
    assert (action.via, action.username, action.count) == ("api", "api:requeuer", 2)

    execute_run(run.pk)

    assert statuses(entries) == ["resolved", "pending", "resolved"]
    status = client.get(body["status_url"], HTTP_AUTHORIZATION=requeuer)
    assert status.status_code == 200
    shown = status.json()
    assert set(shown) >= RUN_KEYS
    assert {key: shown[key] for key in RUN_KEYS} == {
        "id": run.pk,
        "status": "finished",
        "total": 2,
        "done": 2,
        "succeeded": 2,
        "failed": 0,
        "dry_run": False,
    }
    assert shown["skipped"] == 0
    assert shown["finished_at"].endswith("Z")


def test_a_queued_run_reports_queued_with_nothing_done(client, orders, requeuer):
    fail(orders, 2)
    run_id = post(client, requeuer, {"job": "orders"}).json()["run_id"]

    shown = client.get(f"/api/v1/requeue-runs/{run_id}", HTTP_AUTHORIZATION=requeuer).json()

    assert (shown["status"], shown["total"], shown["done"]) == ("queued", 2, 0)
    assert (shown["succeeded"], shown["failed"], shown["dry_run"]) == (0, 0, False)


def test_a_filter_run_leaves_out_entries_that_fail_after_the_request(client, orders, requeuer):
    before = fail(orders, 2)

    body = post(client, requeuer, {"job": "orders", "rate_limit": 1000}).json()
    later = fail(orders, 2)
    relax(orders)
    execute_run(body["run_id"])

    run = RequeueRun.objects.get(pk=body["run_id"])
    assert run.filters == {"job": "orders"}
    assert run.max_id == before[-1].pk
    assert run.rate_limit == 1000
    assert (body["total"], run.done, run.succeeded) == (2, 2, 2)
    assert statuses(before) == ["resolved", "resolved"]
    assert statuses(later) == ["pending", "pending"]


def test_a_filter_by_error_group_and_batch_passes_through(client, orders, requeuer):
    entries = fail(orders, 2)
    other = fail(orders, 1)
    group = entries[0].error_group_id

    body = post(
        client, requeuer, {"job": "orders", "error_group": group, "batch": entries[0].batch_id}
    ).json()

    run = RequeueRun.objects.get(pk=body["run_id"])
    assert run.filters == {"job": "orders", "error_group": group, "batch": entries[0].batch_id}
    assert body["total"] == 2
    assert other[0].error_group_id == group  # only the batch filter leaves it out


def test_a_dry_run_only_counts_and_changes_nothing(client, orders, requeuer):
    entries = fail(orders, 3)
    relax(orders)
    counters_before = JobCounters.objects.filter(job=orders).values().get()

    response = post(client, requeuer, {"job": "orders", "dry_run": True})

    assert response.status_code == 202
    body = response.json()
    assert body["total"] == 3
    execute_run(body["run_id"])  # a dry run is finished when it starts: nothing to execute
    assert statuses(entries) == ["pending"] * 3
    assert [DLQEntry.objects.get(pk=e.pk).attempts for e in entries] == [1, 1, 1]
    assert JobCounters.objects.filter(job=orders).values().get() == counters_before
    shown = client.get(body["status_url"], HTTP_AUTHORIZATION=requeuer).json()
    assert (shown["status"], shown["dry_run"], shown["total"], shown["done"]) == (
        "finished",
        True,
        3,
        0,
    )
    assert OperatorAction.objects.get(requeue_run_id=body["run_id"]).dry_run is True


def test_a_canary_run_stops_itself_when_the_sample_still_fails(client, orders, requeuer):
    entries = fail(orders, 6)

    body = post(
        client,
        requeuer,
        {"job": "orders", "canary_size": 2, "canary_max_failure_ratio": 0.5},
    ).json()
    execute_run(body["run_id"])

    shown = client.get(body["status_url"], HTTP_AUTHORIZATION=requeuer).json()
    assert (shown["status"], shown["done"], shown["failed"]) == ("cancelled", 2, 2)
    assert "canary" in shown["stop_reason"]
    assert statuses(entries) == ["pending"] * 6


def test_status_pending_is_accepted_as_a_filter_word(client, orders, requeuer):
    fail(orders, 1)
    response = post(client, requeuer, {"job": "orders", "status": "pending"})
    assert response.status_code == 202
    assert RequeueRun.objects.get().filters == {"job": "orders"}


def test_a_token_without_can_requeue_is_refused(client, orders, auth):
    entries = fail(orders, 1)
    body = post_refused(client, auth, {"ids": [entries[0].pk]}, 403)
    assert body["detail"] == {"can_requeue": False}
    assert statuses(entries) == ["pending"]


def test_no_token_is_a_401(client, orders):
    fail(orders, 1)
    post_refused(client, "", {"job": "orders"}, 401)
    post_refused(client, "Bearer velo_wrong", {"job": "orders"}, 401)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "",
        "[1, 2]",
        '"orders"',
        '{"ids": [1], "rate_limit": NaN}',
        {},
        {"ids": []},
        {"ids": "1,2"},
        {"ids": [1, "2"]},
        {"ids": [1, True]},
        {"ids": [0]},
        {"ids": [1.5]},
        {"ids": [1], "job": "orders"},
        {"job": "orders", "unknown": 1},
        {"job": "orders", "status": "resolved"},
        {"job": "orders", "rate_limit": 0},
        {"job": "orders", "rate_limit": -3},
        {"job": "orders", "rate_limit": "fast"},
        {"job": "orders", "rate_limit": True},
        {"job": "orders", "dry_run": "yes"},
        {"job": "orders", "canary_size": 0},
        {"job": "orders", "canary_size": 2.5},
        {"job": "orders", "canary_size": "2"},
        {"job": "orders", "canary_size": 2**31},  # over the column: was a 503 on PostgreSQL
        {"ids": [1], "canary_size": 9223372036854775806, "canary_max_failure_ratio": 0.0},
        {"job": "orders", "canary_max_failure_ratio": 0.5},
        {"job": "orders", "canary_size": 2, "canary_max_failure_ratio": 2},
        {"job": "orders", "error_group": "1"},
        {"job": "orders", "batch": -1},
        {"job": ["orders"]},
        {"job": "not a slug\u0000"},
        {"job": "", "error_group": 1},
        {"job": "orders", "rate_limit": 10**400},
        {"job": "orders", "rate_limit": 1e-6},  # would take ~11.6 days an entry
        {"job": "orders", "rate_limit": 0.09},
        {"job": "orders", "rate_limit": 100_001},
        {"job": "nope", "dry_run": "yes"},  # wrong in itself: a 400 before the unknown job's 404
        {"rate_limit": 5},
    ],
)
def test_bad_bodies_are_a_json_400_and_start_nothing(client, orders, requeuer, body):
    fail(orders, 1)
    post_refused(client, requeuer, body, 400)


def test_the_rate_limit_says_its_range(client, orders, requeuer):
    fail(orders, 1)
    body = post_refused(client, requeuer, {"job": "orders", "rate_limit": 1e-6}, 400)
    assert body["error"] == "rate_limit must be a number of entries per second from 0.1 to 100,000"
    assert body["detail"] == {"rate_limit": "1e-06"}
    for edge in (0.1, 100_000):
        RequeueRun.objects.update(status="finished")
        assert post(client, requeuer, {"job": "orders", "rate_limit": edge}).status_code == 202


def test_a_run_over_entries_a_live_run_holds_is_a_409_naming_it(client, orders, requeuer):
    entries = fail(orders, 3)
    live = post(client, requeuer, {"job": "orders", "rate_limit": 5}).json()
    for body in ({"job": "orders"}, {"ids": [entries[1].pk]}):
        answer = post_refused(client, requeuer, body, 409)
        assert answer["detail"] == {
            "run_id": live["run_id"],
            "status": "queued",
            "status_url": live["status_url"],
        }
        assert f"requeue run {live['run_id']} (queued, 0 of 3 done)" in answer["error"]
    patch = {"job": "orders", "patch": [{"op": "add", "path": "/symbol", "value": "A"}]}
    refused_fix = client.post(
        "/api/v1/dlq/patch",
        json.dumps(patch),
        content_type="application/json",
        HTTP_AUTHORIZATION=requeuer,
    )
    assert refused(refused_fix, 409)["detail"]["run_id"] == live["run_id"]
    assert RequeueRun.objects.count() == 1


def test_more_ids_than_the_cap_is_a_413(client, orders, requeuer):
    body = post_refused(client, requeuer, {"ids": list(range(1, 10_002))}, 413)
    assert body["detail"] == {"ids": 10_001, "max_ids": 10_000}


def test_the_cap_itself_is_accepted(client, orders, requeuer):
    entries = fail(orders, 2)
    ids = [e.pk for e in entries] + list(range(10**6, 10**6 + 9_998))
    response = post(client, requeuer, {"ids": ids})
    assert response.status_code == 202
    assert response.json()["total"] == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"job": "nope"}, {"job": "nope"}),
        ({"job": "orders", "error_group": 999999}, {"error_group": 999999}),
        ({"job": "orders", "batch": 999999}, {"batch": 999999}),
    ],
)
def test_unknown_job_group_or_batch_is_a_json_404(client, orders, requeuer, body, detail):
    assert post_refused(client, requeuer, body, 404)["detail"] == detail


def test_a_job_limited_token_requeues_only_its_jobs(client, make_token):
    orders, trades = schema_job("orders"), schema_job("trades")
    mine, theirs = fail(trades, 2), fail(orders, 1)
    _, limited = make_token("trades-ops", jobs=[trades], can_requeue=True)

    by_ids = post(client, limited, {"ids": [e.pk for e in mine]})
    assert by_ids.status_code == 202
    status_url = by_ids.json()["status_url"]
    assert client.get(status_url, HTTP_AUTHORIZATION=limited).status_code == 200

    mixed = post_refused(client, limited, {"ids": [mine[0].pk, theirs[0].pk]}, 403)
    assert mixed["detail"]["ids"] == [theirs[0].pk]
    post_refused(client, limited, {"job": "orders"}, 403)
    no_job = post_refused(client, limited, {"error_group": mine[0].error_group_id}, 403)
    assert no_job["detail"] == {"jobs": ["trades"]}
    assert post(client, limited, {"job": "trades", "dry_run": True}).status_code == 202


def test_a_job_limited_token_cannot_read_a_run_over_another_job(client, make_token, requeuer):
    orders, trades = schema_job("orders"), schema_job("trades")
    theirs = fail(orders, 1)
    fail(trades, 1)
    _, limited = make_token("trades-only", jobs=[trades])
    by_filter = post(client, requeuer, {"job": "orders"}).json()["status_url"]
    RequeueRun.objects.update(status="finished")  # one run over the entries at a time
    by_ids = post(client, requeuer, {"ids": [theirs[0].pk]}).json()["status_url"]
    own = post(client, requeuer, {"job": "trades"}).json()["status_url"]

    refused(client.get(by_filter, HTTP_AUTHORIZATION=limited), 403)
    refused(client.get(by_ids, HTTP_AUTHORIZATION=limited), 403)
    assert client.get(own, HTTP_AUTHORIZATION=limited).status_code == 200


def test_an_unknown_run_is_a_json_404(client, auth):
    body = refused(client.get("/api/v1/requeue-runs/999999", HTTP_AUTHORIZATION=auth), 404)
    assert body["detail"] == {"run_id": 999999}
    huge = client.get(f"/api/v1/requeue-runs/{2**70}", HTTP_AUTHORIZATION=auth)
    refused(huge, 404)


def test_reading_a_run_needs_a_token(client, orders, requeuer):
    fail(orders, 1)
    status_url = post(client, requeuer, {"job": "orders"}).json()["status_url"]
    refused(client.get(status_url), 401)


def test_wrong_methods_are_a_json_405(client, auth):
    refused(client.get(URL, HTTP_AUTHORIZATION=auth), 405)
    refused(client.post("/api/v1/requeue-runs/1", HTTP_AUTHORIZATION=auth), 405)
