"""GET /api/v1/dlq pages are bounded in bytes, and can leave the payloads out (issue 13 §4)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dlq.models import DLQEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/dlq"
BUDGET = 1024 * 1024
ENVELOPE = 200  # {"results": [...], "next": "http://…"} around the entries


def big(i, size=300_000):
    return {"price": i, "blob": "x" * size}  # no symbol: demo.trades fails it


def walk(client, auth, **query):
    """Every page of the listing, following `next`."""
    pages = []
    response = client.get(URL, query, HTTP_AUTHORIZATION=auth)
    while True:
        assert response.status_code == 200
        pages.append(response)
        following = response.json()["next"]
        if following is None:
            return pages
        response = client.get(following, HTTP_AUTHORIZATION=auth)


def test_a_page_of_large_payloads_stays_under_the_byte_budget_and_next_continues(
    client, auth, job, run_batch, settings
):
    settings.VELO_API_PAGE_BYTES = BUDGET
    run_batch(job, [big(i) for i in range(12)])

    pages = walk(client, auth, limit=16)

    assert len(pages) == 4  # three entries of ~300 kB a page
    for response in pages:
        assert len(response.content) <= BUDGET + ENVELOPE
    ids = [e["id"] for r in pages for e in r.json()["results"]]
    assert ids == list(DLQEntry.objects.order_by("-pk").values_list("pk", flat=True))
    assert all(e["payload"]["blob"] == "x" * 300_000 for r in pages for e in r.json()["results"])


def test_an_entry_bigger_than_the_budget_comes_whole_on_a_page_of_its_own(
    client, auth, job, run_batch, settings
):
    settings.VELO_API_PAGE_BYTES = BUDGET
    run_batch(job, [big(0, size=100), big(1, size=2 * BUDGET), big(2, size=100)])

    pages = walk(client, auth)

    assert [len(r.json()["results"]) for r in pages] == [1, 1, 1]
    assert pages[1].json()["results"][0]["payload"]["blob"] == "x" * (2 * BUDGET)


def test_payload_false_lists_entries_without_their_payloads(client, auth, job, run_batch, settings):
    settings.VELO_API_PAGE_BYTES = BUDGET
    run_batch(job, [big(i) for i in range(12)])

    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"payload": "false"}, HTTP_AUTHORIZATION=auth)

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert len(body["results"]) == 12
    assert all(e["payload"] is None for e in body["results"])
    assert len(response.content) < 12 * 1000
    # The payloads are not even read: no column, and no query per entry.
    assert len(queries.captured_queries) <= 6
    assert not any('"payload"' in q["sql"] for q in queries.captured_queries)
    bad = client.get(URL, {"payload": "maybe"}, HTTP_AUTHORIZATION=auth)
    assert bad.status_code == 400
