"""POST /api/v1/jobs/<job>/batches: the three body forms, every refusal, limits and idempotency."""

import io
import json

import pytest
from django.db import connection
from django.test import RequestFactory, override_settings

from dlq.api import batches
from dlq.models import Batch
from dlq.tokens import revoke
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/orders/batches"
JSON = "application/json"
NDJSON = "application/x-ndjson"


def post(client, auth, body, content_type=JSON, url=URL, **headers):
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    return client.post(url, body, content_type=content_type, **headers)


# --- accepted ---------------------------------------------------------------------------


def test_json_array_is_stored_as_one_batch_and_answered_202(client, job, auth):
    response = post(client, auth, json.dumps([GOOD, BAD]))

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"batch_id", "records", "status_url"}
    batch = Batch.objects.get()
    assert body["batch_id"] == batch.pk
    assert body["records"] == 2
    assert body["status_url"] == f"http://testserver/api/v1/batches/{batch.pk}"
    assert response["Location"] == body["status_url"]
    assert batch.job == job
    assert batch.records == [GOOD, BAD]
    assert batch.record_count == 2
    assert batch.status == Batch.Status.QUEUED
    assert batch.submitted_by == "ingest"
    assert batch.idempotency_key is None


def test_records_object_is_stored_as_one_batch(client, job, auth):
    response = post(client, auth, json.dumps({"records": [GOOD, GOOD, BAD]}))

    assert response.status_code == 202
    assert response.json()["records"] == 3
    assert Batch.objects.get().records == [GOOD, GOOD, BAD]


def test_ndjson_is_stored_one_record_a_line_skipping_blank_lines(client, job, auth):
    body = f"{json.dumps(GOOD)}\r\n\n   \n{json.dumps(BAD)}\n"

    response = post(client, auth, body, content_type=NDJSON)

    assert response.status_code == 202
    assert response.json()["records"] == 2
    assert Batch.objects.get().records == [GOOD, BAD]


def test_ndjson_content_type_with_charset_is_still_ndjson(client, job, auth):
    body = f"{json.dumps(GOOD)}\n{json.dumps(GOOD)}\n"

    response = post(client, auth, body, content_type=f"{NDJSON}; charset=utf-8")

    assert response.status_code == 202
    assert Batch.objects.get().records == [GOOD, GOOD]


def test_batch_of_exactly_the_record_limit_is_accepted(client, job, auth):
    with override_settings(VELO_MAX_BATCH_RECORDS=3):
        response = post(client, auth, json.dumps([GOOD] * 3))

    assert response.status_code == 202
    assert Batch.objects.get().record_count == 3


def test_token_limited_to_the_job_may_submit_to_it(client, job, make_token):
    _, limited = make_token("orders-only", jobs=[job])

    response = post(client, limited, json.dumps([GOOD]))

    assert response.status_code == 202


# --- idempotency ------------------------------------------------------------------------


def test_same_idempotency_key_returns_the_same_batch_and_stores_one(client, job, auth):
    first = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="upload-42")
    again = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="upload-42")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Batch.objects.get().idempotency_key == "upload-42"


def test_same_idempotency_key_with_other_records_is_422_and_stores_nothing(client, job, auth):
    first = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="upload-42")
    other = post(client, auth, json.dumps([GOOD, BAD]), HTTP_IDEMPOTENCY_KEY="upload-42")

    assert other.status_code == 422
    body = other.json()
    assert set(body) == {"error", "detail"}
    assert "Idempotency-Key" in body["error"]
    assert body["detail"] == {"batch_id": first.json()["batch_id"]}
    assert Batch.objects.get().record_count == 1


def test_same_records_in_another_body_form_replay_the_same_batch(client, job, auth):
    first = post(client, auth, json.dumps([GOOD, BAD]), HTTP_IDEMPOTENCY_KEY="k")
    reordered = [dict(reversed(list(record.items()))) for record in (GOOD, BAD)]
    ndjson = "\n".join(json.dumps(record) for record in reordered)

    again = post(client, auth, ndjson, content_type=NDJSON, HTTP_IDEMPOTENCY_KEY="k")
    wrapped = post(client, auth, json.dumps({"records": [GOOD, BAD]}), HTTP_IDEMPOTENCY_KEY="k")

    assert again.status_code == wrapped.status_code == 202
    assert again.json() == wrapped.json() == first.json()
    assert Batch.objects.count() == 1


def test_a_batch_stored_before_records_were_hashed_answers_any_replay_of_its_key(client, job, auth):
    first = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="old")
    Batch.objects.update(records_hash="")  # as migration 0016 leaves earlier batches

    again = post(client, auth, json.dumps([BAD]), HTTP_IDEMPOTENCY_KEY="old")

    assert again.status_code == 202
    assert again.json() == first.json()


def test_different_idempotency_keys_store_different_batches(client, job, auth):
    first = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="a")
    second = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="b")

    assert first.json()["batch_id"] != second.json()["batch_id"]
    assert Batch.objects.count() == 2


def test_idempotency_key_of_200_characters_is_accepted(client, job, auth):
    response = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY="k" * 200)

    assert response.status_code == 202
    assert Batch.objects.get().idempotency_key == "k" * 200


@pytest.mark.parametrize("key", ["k" * 201, "tab\tinside", "naïve"])
def test_idempotency_key_too_long_or_not_printable_ascii_is_400(
    client, job, auth, assert_refused, key
):
    response = post(client, auth, json.dumps([GOOD]), HTTP_IDEMPOTENCY_KEY=key)

    body = assert_refused(response, 400)
    assert "Idempotency-Key" in body["error"]


# --- 400: the body ----------------------------------------------------------------------


def test_invalid_json_is_400(client, job, auth, assert_refused):
    body = assert_refused(post(client, auth, '[{"symbol": "ACME",'), 400)

    assert "not valid JSON" in body["error"]
    assert body["detail"]["message"]


def test_body_that_is_not_utf8_is_400(client, job, auth, assert_refused):
    assert_refused(post(client, auth, b'[{"symbol": "\xff\xfe"}]'), 400)


@pytest.mark.parametrize("body", ["", "   \n"])
def test_empty_body_is_400(client, job, auth, assert_refused, body):
    body = assert_refused(post(client, auth, body), 400)

    assert "empty" in body["error"]


@pytest.mark.parametrize("body", ['"ACME"', "42", "null", '{"records": {"symbol": "ACME"}}'])
def test_body_that_is_not_a_list_of_records_is_400(client, job, auth, assert_refused, body):
    body = assert_refused(post(client, auth, body), 400)

    assert "array" in body["error"]


def test_object_body_other_than_records_is_400(client, job, auth, assert_refused):
    body = assert_refused(post(client, auth, json.dumps({"rows": [GOOD]})), 400)

    assert body["detail"] == {"keys": ["rows"]}


def test_empty_list_of_records_is_400(client, job, auth, assert_refused):
    assert_refused(post(client, auth, "[]"), 400)


def test_record_that_is_not_an_object_is_400_naming_its_index(client, job, auth, assert_refused):
    body = assert_refused(post(client, auth, json.dumps([GOOD, ["ACME", 1]])), 400)

    assert body["detail"] == {"index": 1}


def test_ndjson_with_one_broken_line_is_400_naming_the_line_and_stores_nothing(
    client, job, auth, assert_refused
):
    body = f"{json.dumps(GOOD)}\n\n{json.dumps(GOOD)}\n{{broken\n{json.dumps(GOOD)}\n"

    body = assert_refused(post(client, auth, body, content_type=NDJSON), 400)

    assert "line 4" in body["error"]
    assert body["detail"]["line"] == 4


def test_record_with_a_nul_character_is_400(client, job, auth, assert_refused):
    body = assert_refused(post(client, auth, '[{"symbol": "AC\\u0000ME", "price": 1}]'), 400)

    assert "NUL" in body["error"]
    assert body["detail"]["index"] == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_cannot_carry_are_400(client, job, auth, assert_refused, number):
    assert_refused(post(client, auth, f'[{{"symbol": "ACME", "price": {number}}}]'), 400)


def test_json_nested_deeper_than_the_parser_can_go_is_400(client, job, auth, assert_refused):
    body = assert_refused(post(client, auth, "[" * 100_000 + "]" * 100_000), 400)

    assert "nested too deeply" in body["error"]


def test_record_nested_deeper_than_the_limit_is_400(client, job, auth, assert_refused):
    deep = '{"a": ' * 150 + "1" + "}" * 150

    body = assert_refused(post(client, auth, f"[{deep}]"), 400)

    assert "nested too deeply" in body["error"]


def test_deeply_nested_ndjson_line_is_400_naming_the_line(client, job, auth, assert_refused):
    body = json.dumps(GOOD) + "\n" + "[" * 50_000 + "]" * 50_000 + "\n"

    body = assert_refused(post(client, auth, body, content_type=NDJSON), 400)

    assert body["detail"]["line"] == 2


# --- 401, 403, 404, 405, 409 ------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(client, job, assert_refused):
    response = post(client, None, json.dumps([GOOD]))

    assert_refused(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer velo_not-a-real-token", "Bearer", "Basic dXNlcjpwYXNz", "velo_token"]
)
def test_wrong_token_or_scheme_is_401(client, job, assert_refused, header):
    assert_refused(post(client, header, json.dumps([GOOD])), 401)


def test_revoked_token_is_401(client, job, make_token, assert_refused):
    token, header = make_token()
    revoke(token)

    body = assert_refused(post(client, header, json.dumps([GOOD])), 401)

    assert "revoked" in body["error"]


def test_token_limited_to_another_job_is_403(client, job, make_job, make_token, assert_refused):
    _, other_only = make_token("payments-only", jobs=[make_job("payments")])

    response = post(client, other_only, json.dumps([GOOD]))
    body = assert_refused(response, 403)

    assert body == {"error": "this API token may not use this job", "detail": None}
    assert "orders" not in response.content.decode()


def test_unknown_job_is_a_json_404(client, job, auth, assert_refused):
    body = assert_refused(
        post(client, auth, json.dumps([GOOD]), url="/api/v1/jobs/nope/batches"), 404
    )

    assert body["detail"] == {"job": "nope"}


@pytest.mark.parametrize("name", ["bad%00name", "caf%C3%A9", "x" * 101])
def test_job_name_that_is_not_a_slug_is_a_json_404(client, job, auth, assert_refused, name):
    url = f"/api/v1/jobs/{name}/batches"

    assert_refused(post(client, auth, json.dumps([GOOD]), url=url), 404)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method_is_a_json_405(client, job, auth, assert_refused, method):
    response = getattr(client, method)(URL, HTTP_AUTHORIZATION=auth)

    body = assert_refused(response, 405)
    assert body["detail"] == {"allowed": ["POST"]}


def test_disabled_job_is_409(client, make_job, auth, assert_refused):
    make_job("orders", enabled=False)

    body = assert_refused(post(client, auth, json.dumps([GOOD])), 409)

    assert "disabled" in body["error"]


# --- 413 --------------------------------------------------------------------------------


def test_body_one_byte_over_the_default_10_mib_is_413(client, job, auth, settings, assert_refused):
    assert settings.VELO_MAX_BODY_BYTES == 10 * 1024 * 1024
    filler = b" " * (settings.VELO_MAX_BODY_BYTES + 1 - len(b"[]"))

    body = assert_refused(post(client, auth, b"[" + filler + b"]"), 413)

    assert body["detail"] == {"max_bytes": 10 * 1024 * 1024, "bytes": 10 * 1024 * 1024 + 1}


@override_settings(VELO_MAX_BODY_BYTES=64)
def test_body_over_a_configured_limit_is_413(client, job, auth, assert_refused):
    body = json.dumps([GOOD] * 3)
    assert len(body) > 64

    assert_refused(post(client, auth, body), 413)


@override_settings(VELO_MAX_BODY_BYTES=64)
def test_body_without_content_length_is_read_only_up_to_the_limit(job, auth, assert_refused):
    """A chunked (or ASGI) body has no Content-Length: the read itself must stop at the limit."""

    class CountingStream(io.BytesIO):
        read_bytes = 0

        def read(self, size=-1):
            chunk = super().read(size)
            self.read_bytes += len(chunk)
            return chunk

    request = RequestFactory().post(URL, b"", content_type=JSON, HTTP_AUTHORIZATION=auth)
    request.META.pop("CONTENT_LENGTH", None)
    request._stream = stream = CountingStream(b"[" + b" " * 10_000 + b"]")

    response = batches.submit_batch(request, job_name="orders")

    assert_refused(response, 413)
    assert stream.read_bytes == 65


def test_chunked_body_django_reads_as_empty_is_411_not_400(client, job, auth, assert_refused):
    response = post(client, auth, "", HTTP_TRANSFER_ENCODING="chunked")

    body = assert_refused(response, 411)
    assert "Content-Length" in body["error"]


@override_settings(VELO_MAX_BATCH_RECORDS=3)
def test_more_records_than_the_limit_is_413(client, job, auth, assert_refused):
    body = assert_refused(post(client, auth, json.dumps([GOOD] * 4)), 413)

    assert body["detail"] == {"records": 4, "max_records": 3}


# --- 503 --------------------------------------------------------------------------------


def test_database_failure_while_storing_is_a_json_503_not_a_500(client, job, auth):
    """A real database error (the batch table is gone), not a stand-in for one."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE dlq_batch RENAME TO dlq_batch_away")
    try:
        response = post(client, auth, json.dumps([GOOD]))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE dlq_batch_away RENAME TO dlq_batch")

    assert response.status_code == 503
    assert set(response.json()) == {"error", "detail"}
    assert Batch.objects.count() == 0


def test_a_literal_backslash_u0000_in_text_is_not_mistaken_for_a_nul(client, job, auth):
    record = {"symbol": "ACME", "note": "the text \\u0000 is six characters, not a NUL"}
    response = post(client, auth, json.dumps([record]))
    assert response.status_code == 202
    assert Batch.objects.get().records == [record]
