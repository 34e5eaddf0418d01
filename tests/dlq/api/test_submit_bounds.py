"""A body of millions of tiny records is refused before it is parsed into a huge list
(issue 13 §4): 9 MiB of `[{},{},…]` made 240 MiB of dicts before anything counted them."""

import json
import tracemalloc

import pytest

from dlq.models import Batch

URL = "/api/v1/jobs/orders/batches"
COUNT = (9 * 1024 * 1024) // 3  # records of `{},` in 9 MiB
BODIES = {
    "array": (b"[" + b"{}," * (COUNT - 1) + b"{}]", "application/json"),
    "records object": (b'{"records": [' + b"{}," * (COUNT - 1) + b"{}]}", "application/json"),
    "ndjson": (b"{}\n" * COUNT, "application/x-ndjson"),
}
# The body itself is 9 MiB, copied a couple of times on its way in (test client, read,
# decode); the three million dicts it makes when parsed whole are 227 MiB (measured).
PEAK_BOUND = 50 * 1024 * 1024


@pytest.mark.parametrize("kind", BODIES)
def test_a_9_mib_body_of_empty_records_is_413_without_parsing_it_whole(
    client, job, auth, assert_refused, kind
):
    body, content_type = BODIES[kind]
    tracemalloc.start()
    try:
        response = client.post(URL, body, content_type=content_type, HTTP_AUTHORIZATION=auth)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    answer = assert_refused(response, 413)
    assert answer["detail"] == {"max_records": 10_000}
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("kind", ["array", "records object", "ndjson"])
def test_exactly_the_limit_of_records_is_accepted(client, job, auth, settings, kind):
    settings.VELO_MAX_BATCH_RECORDS = 5
    records = [{"symbol": "ACME", "price": i} for i in range(5)]
    body = {
        "array": json.dumps(records),
        "records object": json.dumps({"records": records}),
        "ndjson": "\n".join(map(json.dumps, records)) + "\n\n",
    }[kind]
    content_type = "application/x-ndjson" if kind == "ndjson" else "application/json"

    response = client.post(URL, body, content_type=content_type, HTTP_AUTHORIZATION=auth)

    assert response.status_code == 202, response.content
    assert Batch.objects.get().records == records


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"records": [{"symbol": "A", "price": 1}], "more": []}', {"keys": ["more", "records"]}),
        ('{"rows": [{}], "records": []}', {"keys": ["rows"]}),
        ("{}", {"keys": []}),
    ],
)
def test_an_object_body_other_than_records_alone_is_400(
    client, job, auth, assert_refused, body, detail
):
    response = client.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=auth)

    assert assert_refused(response, 400)["detail"] == detail


@pytest.mark.parametrize(
    "body",
    [
        '[{"a": 1} {"b": 2}]',
        '[{"a": 1},]',
        '[{"a": 1}',
        '{"records": [{}]',
        '{"records": [{}],}',
        "[{}] x",
    ],
)
def test_broken_json_is_still_400(client, job, auth, assert_refused, body):
    response = client.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=auth)

    assert "not valid JSON" in assert_refused(response, 400)["error"]


def test_the_ingest_view_reads_bodies_over_the_form_limit(client, job, auth, settings):
    records = [{"symbol": "ACME", "price": 1, "blob": "x" * 1000}] * 3000  # 3 MiB
    body = json.dumps(records)
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = client.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=auth)

    assert response.status_code == 202, response.content[:300]
