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


@pytest.mark.django_db(transaction=True)
def test_a_batch_claimed_just_before_the_database_went_away_is_handed_back(make_job, monkeypatch):
    """Claimed, then reading it failed: it is queued again at once, not left running with
    a live holder until its lease runs out; no attempt is counted lost (none ran)."""
    from dlq.engine import lease
    from dlq.ingest import submit_batch
    from tests.conftest import GOOD

    batch, _ = submit_batch(make_job(), [GOOD])
    real_get = lease.Batch.objects.select_related

    def away(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(lease.Batch.objects, "select_related", away)
    with pytest.raises(OperationalError):
        lease.claim_batch(batch.pk)
    monkeypatch.setattr(lease.Batch.objects, "select_related", real_get)
    batch.refresh_from_db()
    assert (batch.status, batch.claim_token, batch.lost_attempts) == ("queued", "", 0)
