"""Malformed requests are refused cleanly before any middleware can trip over them."""

import pytest


@pytest.mark.django_db
def test_a_non_numeric_content_length_is_a_json_400_not_a_500(client):
    response = client.post(
        "/api/v1/jobs/orders/batches",
        data=b"[]",
        content_type="application/json",
        CONTENT_LENGTH="abc",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "the Content-Length header is not a number"
