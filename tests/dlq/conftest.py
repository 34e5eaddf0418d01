"""Fixtures for the HTTP API tests: tokens made by the real service, and the refusal check."""

import json

import pytest

from dlq.models import Batch
from dlq.tokens import create_token


@pytest.fixture
def make_token(db):
    """Create a token, for every job unless given `jobs`; return (ApiToken, the Authorization
    header value that carries it)."""

    def make(name="ingest", jobs=None, can_requeue=False):
        token, plaintext = create_token(name, jobs=jobs, can_requeue=can_requeue)
        return token, f"Bearer {plaintext}"

    return make


@pytest.fixture
def job(make_job):
    return make_job("orders")


@pytest.fixture
def auth(make_token):
    """The Authorization header of a token that may use every job."""
    return make_token()[1]


@pytest.fixture
def assert_refused(db):
    """Check a refusal: its status, the JSON error shape, and that no batch was stored."""
    batches_before = Batch.objects.count()

    def check(response, status):
        assert response.status_code == status, response.content[:500]
        assert response["Content-Type"].startswith("application/json")
        body = json.loads(response.content)  # also for a view called directly
        assert set(body) == {"error", "detail"}
        assert isinstance(body["error"], str)
        assert body["error"]
        assert Batch.objects.count() == batches_before
        return body

    return check
