"""What the API answers when the database refuses a statement: an outage is a 503 (retry
later), a value no column can hold is the request's 400 (retrying it would never help)."""

import json

import pytest
from django.db import DataError, connection
from django.test import RequestFactory

from dlq.api.middleware import ApiErrorMiddleware

pytestmark = pytest.mark.django_db


def answer_to(exception):
    request = RequestFactory().post("/api/v1/dlq/requeue")
    response = ApiErrorMiddleware(lambda request: None).process_exception(request, exception)
    return response.status_code, json.loads(response.content)


def a_real_data_error():
    """The database's own refusal of a value out of range (SQLite has no such check)."""
    if connection.vendor != "postgresql":
        return DataError("integer out of range")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::integer", [2**40])
    except DataError as exc:
        return exc
    raise AssertionError("PostgreSQL took 2**40 as an integer")


def test_a_value_out_of_range_is_a_400_not_an_outage():
    status, body = answer_to(a_real_data_error())
    assert status == 400
    assert body == {
        "error": "a value in the request is out of range; nothing was stored",
        "detail": None,
    }
