"""Fixtures of the requeue and patch API tests: a schema job and a token that may requeue."""

import pytest

from tests.dlq.factories import schema_job


@pytest.fixture
def orders(db):
    return schema_job("orders")


@pytest.fixture
def requeuer(make_token):
    return make_token("requeuer", can_requeue=True)[1]
