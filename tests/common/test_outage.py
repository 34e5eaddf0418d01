"""Handing work back while the database is away: tried again until it answers, bounded."""

import pytest
from django.db import OperationalError

from common import outage


def _flaky(failures):
    calls = []

    def write():
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("connection refused")

    return write, calls


@pytest.mark.django_db(transaction=True)
def test_the_write_is_tried_again_until_the_database_answers(monkeypatch):
    monkeypatch.setattr(outage.time, "sleep", lambda seconds: None)
    write, calls = _flaky(3)
    assert outage.when_database_returns(write, "batch 1") is True
    assert len(calls) == 4


@pytest.mark.django_db(transaction=True)
def test_it_gives_up_when_its_patience_runs_out(monkeypatch):
    monkeypatch.setattr(outage.time, "sleep", lambda seconds: None)
    write, calls = _flaky(10**6)
    assert outage.when_database_returns(write, "batch 1", patience=0.0) is False
    assert len(calls) == 1


@pytest.mark.django_db
def test_inside_a_transaction_it_is_tried_once_and_the_connection_kept(monkeypatch):
    monkeypatch.setattr(outage.time, "sleep", lambda seconds: pytest.fail("must not wait"))
    write, calls = _flaky(1)
    assert outage.when_database_returns(write, "batch 1") is False
    assert len(calls) == 1
