"""Forms are bounded by Django's DATA_UPLOAD_MAX_MEMORY_SIZE; only the API reads bigger
bodies, itself, against VELO_MAX_BODY_BYTES (issue 13 §4)."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_admin_post_over_the_bound_is_refused_by_django(admin_client):
    big = "x" * (3 * 1024 * 1024)

    response = admin_client.post("/admin/dlq/job/add/", {"name": "big", "config": big})

    assert response.status_code == 400
