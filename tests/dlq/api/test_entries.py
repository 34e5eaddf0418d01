"""GET /api/v1/dlq: DLQ entries newest first, filtered, behind an opaque cursor (SPEC §6)."""

import base64
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dlq.models import DLQEntry
from dlq.tokens import revoke
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db

URL = "/api/v1/dlq"
ENTRY_KEYS = {
    "id",
    "job",
    "batch",
    "index",
    "status",
    "attempts",
    "error_message",
    "error_type",
    "error_group",
    "payload",
    "node_id",
    "created_at",
    "last_attempt_at",
    "resolved_at",
}
NO_PRICE = {"symbol": "ACME"}  # a second error group: Missing required column 'price'


@pytest.fixture
def failed(job, run_batch):
    """A batch of `orders` with three failed records (two error groups) among good ones."""
    return run_batch(job, [GOOD, BAD, GOOD, BAD, NO_PRICE])


def get(client, auth, **query):
    return client.get(URL, query, HTTP_AUTHORIZATION=auth)


def utc(text):
    assert text.endswith("Z")
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset().total_seconds() == 0
    return moment


def test_entries_have_exactly_the_contract_shape_newest_first(client, auth, failed):
    response = get(client, auth)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next"}
    assert body["next"] is None
    entries = body["results"]
    assert [e["index"] for e in entries] == [4, 3, 1]
    for item in entries:
        assert set(item) == ENTRY_KEYS
    newest = DLQEntry.objects.get(batch=failed, index=4)
    item = entries[0]
    assert item["id"] == newest.pk
    assert item["job"] == "orders"
    assert item["batch"] == failed.pk
    assert item["status"] == "pending"
    assert item["attempts"] == 1
    assert item["error_message"] == "Missing required column 'price'"
    assert item["error_type"] == newest.error_type
    assert item["error_group"] == newest.error_group_id
    assert item["payload"] == NO_PRICE
    assert item["node_id"] == newest.node_id
    assert utc(item["created_at"]) == newest.created_at
    assert utc(item["last_attempt_at"]) == newest.last_attempt_at
    assert item["resolved_at"] is None
    assert entries[1]["payload"] == BAD
    assert entries[1]["error_message"] == "Missing required column 'symbol'"


def test_cursor_pagination_walks_every_entry_once(client, auth, job, run_batch):
    run_batch(job, [BAD] * 13)
    run_batch(job, [NO_PRICE] * 12)
    expected = list(DLQEntry.objects.order_by("-pk").values_list("pk", flat=True))
    assert len(expected) == 25

    seen, url, pages = [], f"{URL}?limit=7", 0
    while url:
        response = client.get(url, HTTP_AUTHORIZATION=auth)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 7
        seen += [e["id"] for e in body["results"]]
        url, pages = body["next"], pages + 1
        assert url is None or url.startswith("http://testserver/api/v1/dlq?")

    assert pages == 4
    assert seen == expected  # newest first, no duplicates, none missing


def test_next_keeps_the_filters_and_the_limit(client, auth, job, run_batch):
    run_batch(job, [BAD] * 5 + [NO_PRICE] * 3)
    group = DLQEntry.objects.filter(error_message__contains="symbol").first().error_group_id

    first = get(client, auth, error_group=group, limit=2).json()
    rest = client.get(first["next"], HTTP_AUTHORIZATION=auth).json()

    assert "limit=2" in first["next"]
    assert f"error_group={group}" in first["next"]
    ids = [e["id"] for e in first["results"] + rest["results"]]
    assert len(rest["results"]) == 2
    assert len(set(ids)) == 4
    assert {e["error_group"] for e in first["results"] + rest["results"]} == {group}


def test_a_page_that_ends_exactly_at_the_last_entry_has_no_next(client, auth, job, run_batch):
    run_batch(job, [BAD] * 4)

    body = get(client, auth, limit=4).json()

    assert len(body["results"]) == 4
    assert body["next"] is None


def test_filters_by_job_status_error_group_and_batch(client, auth, make_job, run_batch):
    orders, trades = make_job("orders"), make_job("trades")
    first = run_batch(orders, [BAD, NO_PRICE])
    second = run_batch(orders, [BAD])
    run_batch(trades, [BAD, BAD])
    discarded = DLQEntry.objects.get(batch=second)
    DLQEntry.objects.filter(pk=discarded.pk).update(status="discarded")
    no_price = DLQEntry.objects.get(batch=first, index=1)

    def ids(**query):
        response = get(client, auth, **query)
        assert response.status_code == 200, response.content
        return {e["id"] for e in response.json()["results"]}

    assert len(ids()) == 5
    of_trades = set(DLQEntry.objects.filter(job=trades).values_list("pk", flat=True))
    assert ids(job="trades") == of_trades
    assert ids(job="orders", status="pending") == set(
        DLQEntry.objects.filter(batch=first).values_list("pk", flat=True)
    )
    assert ids(status="discarded") == {discarded.pk}
    assert ids(error_group=no_price.error_group_id) == {no_price.pk}
    assert ids(batch=second.pk) == {discarded.pk}
    assert ids(job="trades", status="resolved") == set()


def test_a_job_limited_token_sees_only_its_jobs(client, make_token, make_job, run_batch):
    orders, trades = make_job("orders"), make_job("trades")
    run_batch(orders, [BAD])
    run_batch(trades, [BAD, BAD])
    _, limited = make_token("trades-only", jobs=[trades])

    body = get(client, limited).json()

    assert {e["job"] for e in body["results"]} == {"trades"}
    assert len(body["results"]) == 2
    assert get(client, limited, job="trades").status_code == 200


def test_a_job_limited_token_filtering_on_another_job_is_refused(
    client, make_token, make_job, assert_refused
):
    make_job("orders")
    trades = make_job("trades")
    _, limited = make_token("trades-only", jobs=[trades])

    body = assert_refused(get(client, limited, job="orders"), 403)

    assert body == {"error": "this API token may not use this job", "detail": None}


@pytest.mark.parametrize(
    "query",
    [
        {"status": "lost"},
        {"error_group": "abc"},
        {"error_group": "-1"},
        {"batch": "0"},
        {"batch": "1.5"},
        {"batch": str(2**64)},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": base64.urlsafe_b64encode(b"id:-5").decode()},
        {"cursor": base64.urlsafe_b64encode(f"id:{2**70}".encode()).decode()},
        {"cursor": "%%%"},
        {"job": "no such/job"},
        {"staus": "pending"},
    ],
)
def test_bad_query_values_are_a_json_400(client, auth, failed, assert_refused, query):
    body = assert_refused(get(client, auth, **query), 400)
    assert body["error"]


def test_a_repeated_filter_is_a_400(client, auth, failed, assert_refused):
    response = client.get(f"{URL}?status=pending&status=resolved", HTTP_AUTHORIZATION=auth)
    assert_refused(response, 400)


def test_limit_1000_and_an_empty_filter_are_accepted(client, auth, failed):
    response = client.get(f"{URL}?limit=1000&job=&status=", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_an_unknown_job_is_a_json_404(client, auth, failed, assert_refused):
    body = assert_refused(get(client, auth, job="nope"), 404)
    assert body["detail"] == {"job": "nope"}


def test_no_token_or_a_revoked_one_is_a_401(client, make_token, failed, assert_refused):
    token, header = make_token()
    revoke(token)
    assert_refused(client.get(URL), 401)
    assert_refused(get(client, header), 401)
    assert_refused(get(client, "Bearer velo_not-a-token"), 401)


def test_a_wrong_method_is_a_json_405(client, auth, assert_refused):
    body = assert_refused(client.post(URL, {}, HTTP_AUTHORIZATION=auth), 405)
    assert body["detail"] == {"allowed": ["GET"]}


def test_a_page_is_one_ordered_query_that_never_counts(client, auth, job, run_batch):
    run_batch(job, [BAD] * 30)
    group = DLQEntry.objects.first().error_group_id

    for query in ({}, {"job": "orders", "status": "pending"}, {"error_group": group}):
        with CaptureQueriesContext(connection) as queries:
            response = get(client, auth, limit=10, **query)
        assert response.status_code == 200
        sql = [q["sql"] for q in queries.captured_queries]
        assert not any("COUNT(" in s.upper() for s in sql), sql
        listing = [s for s in sql if 'FROM "dlq_dlqentry"' in s]
        assert len(listing) == 1
        assert 'ORDER BY "dlq_dlqentry"."id" DESC' in listing[0]
        assert "LIMIT 11" in listing[0]
        assert '"traceback"' not in listing[0]
        assert len(queries.captured_queries) <= 5  # token, its jobs, (job), the page, job names


def test_the_query_count_does_not_grow_with_the_page(client, auth, job, run_batch):
    run_batch(job, [BAD] * 3)
    get(client, auth)  # the token's first use of the minute also records last_used_at
    with CaptureQueriesContext(connection) as small:
        get(client, auth)
    run_batch(job, [BAD] * 40)
    with CaptureQueriesContext(connection) as large:
        get(client, auth)
    assert len(large.captured_queries) == len(small.captured_queries)
