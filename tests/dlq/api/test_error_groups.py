"""GET /api/v1/errors and /api/v1/errors/stats: error groups and the stored totals (SPEC §6)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from errors.models import ErrorGroup, ErrorOccurrence, ErrorTotal
from errors.services import Failure, group_failures
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db

GROUP_KEYS = {
    "id",
    "job",
    "fingerprint",
    "message",
    "error_type",
    "count",
    "first_seen",
    "last_seen",
    "status",
}
TOP_KEYS = {"job", "message", "count", "last_seen"}
NO_PRICE = {"symbol": "ACME"}


@pytest.fixture
def history(make_job, run_batch):
    """Two jobs' failures, stored by the engine: orders has two groups, trades one."""
    orders, trades = make_job("orders"), make_job("trades")
    run_batch(orders, [GOOD, BAD, BAD, NO_PRICE])
    run_batch(trades, [BAD])
    return orders, trades


def get(client, auth, path="/api/v1/errors", **query):
    return client.get(path, query, HTTP_AUTHORIZATION=auth)


def stats(client, auth):
    response = get(client, auth, "/api/v1/errors/stats")
    assert response.status_code == 200, response.content
    return response.json()


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_groups_have_exactly_the_contract_shape(client, auth, history):
    response = get(client, auth, job="orders")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results"}
    group = ErrorGroup.objects.get(job_name="orders", template__contains="symbol")
    item = next(g for g in body["results"] if g["id"] == group.pk)
    assert set(item) == GROUP_KEYS
    assert item == {
        "id": group.pk,
        "job": "orders",
        "fingerprint": group.fingerprint,
        "message": group.template,
        "error_type": "RecordInvalid",
        "count": 2,
        "first_seen": iso(group.first_seen),
        "last_seen": iso(group.last_seen),
        "status": "unresolved",
    }


def test_the_message_is_the_template_not_the_last_raw_message(client, auth, make_job):
    now = timezone.now()
    group_failures("orders", [Failure("Timeout", "Timeout after 3001 ms")], now=now)
    group_failures("orders", [Failure("Timeout", "Timeout after 2950 ms")], now=now)

    (item,) = get(client, auth).json()["results"]

    assert item["count"] == 2
    assert item["message"] == ErrorGroup.objects.get().template
    assert "2950" not in item["message"]


def test_groups_are_listed_most_recently_seen_first(client, auth, history):
    group = ErrorGroup.objects.get(job_name="orders", template__contains="price")
    ErrorGroup.objects.filter(pk=group.pk).update(last_seen=timezone.now() + timedelta(hours=1))

    results = get(client, auth).json()["results"]

    assert results[0]["id"] == group.pk
    seen = [r["last_seen"] for r in results]
    assert seen == sorted(seen, reverse=True)
    assert len(results) == 3


def test_filters_by_job_and_status_and_limits(client, auth, history):
    resolved = ErrorGroup.objects.get(job_name="orders", template__contains="price")
    ErrorGroup.objects.filter(pk=resolved.pk).update(status="resolved")

    def ids(**query):
        response = get(client, auth, **query)
        assert response.status_code == 200, response.content
        return {g["id"] for g in response.json()["results"]}

    assert len(ids(job="orders")) == 2
    assert ids(job="orders", status="resolved") == {resolved.pk}
    assert ids(status="unresolved") == set(
        ErrorGroup.objects.filter(status="unresolved").values_list("pk", flat=True)
    )
    assert ids(job="gone") == set()  # history outlives jobs: a name, not a Job, filters
    assert len(ids(limit=1)) == 1


def test_a_job_limited_token_sees_only_its_jobs_groups(client, make_token, history):
    _, trades = history
    _, limited = make_token("trades-only", jobs=[trades])

    results = get(client, limited).json()["results"]

    assert {g["job"] for g in results} == {"trades"}
    refused = get(client, limited, job="orders")
    assert refused.status_code == 403
    assert refused.json() == {"error": "this API token may not use this job", "detail": None}


def test_stats_report_stored_totals_groups_and_the_recent_buffer(client, auth, history):
    body = stats(client, auth)

    assert set(body) == {"total_errors", "unique_errors", "buffered_messages", "top"}
    assert body["total_errors"] == 4
    assert body["unique_errors"] == 3
    assert body["buffered_messages"] == 3
    assert len(body["top"]) == 3
    for item in body["top"]:
        assert set(item) == TOP_KEYS
    newest = ErrorGroup.objects.order_by("-last_seen", "-pk").first()
    assert body["top"][0] == {
        "job": newest.job_name,
        "message": newest.template,
        "count": newest.count,
        "last_seen": iso(newest.last_seen),
    }


def test_the_buffer_holds_the_ten_most_recently_seen_groups(client, auth, db):
    start = timezone.now() - timedelta(hours=1)
    for i in range(12):
        group_failures("orders", [Failure(f"Error{i}", "boom")], now=start + timedelta(minutes=i))

    body = stats(client, auth)

    assert body["unique_errors"] == 12
    assert body["total_errors"] == 12
    assert body["buffered_messages"] == 10
    newest_first = ErrorGroup.objects.order_by("-last_seen")[:10]
    assert [t["last_seen"] for t in body["top"]] == [iso(g.last_seen) for g in newest_first]


def test_total_errors_is_the_stored_counter_not_the_occurrences_kept(client, auth, history):
    ErrorOccurrence.objects.all().delete()  # what retention does to old occurrences

    body = stats(client, auth)

    assert body["total_errors"] == 4
    assert sum(ErrorTotal.objects.values_list("occurrences", flat=True)) == 4


def test_stats_of_a_job_limited_token_cover_its_jobs_only(client, make_token, history):
    _, trades = history
    _, limited = make_token("trades-only", jobs=[trades])

    body = stats(client, limited)

    assert (body["total_errors"], body["unique_errors"], body["buffered_messages"]) == (1, 1, 1)
    assert body["top"][0]["job"] == "trades"


def test_stats_with_no_errors_are_zero(client, auth):
    assert stats(client, auth) == {
        "total_errors": 0,
        "unique_errors": 0,
        "buffered_messages": 0,
        "top": [],
    }


@pytest.mark.parametrize(
    "query",
    [{"status": "open"}, {"limit": "0"}, {"limit": "1001"}, {"job": "a b"}, {"sort": "count"}],
)
def test_bad_query_values_are_a_json_400(client, auth, history, assert_refused, query):
    assert_refused(get(client, auth, **query), 400)


def test_stats_take_no_parameters(client, auth, assert_refused):
    assert_refused(get(client, auth, "/api/v1/errors/stats", job="orders"), 400)


@pytest.mark.parametrize("path", ["/api/v1/errors", "/api/v1/errors/stats"])
def test_no_token_is_a_401_and_a_wrong_method_a_405(client, auth, assert_refused, path):
    assert_refused(client.get(path), 401)
    assert_refused(client.post(path, HTTP_AUTHORIZATION=auth), 405)
    assert_refused(client.delete(path, HTTP_AUTHORIZATION=auth), 405)
