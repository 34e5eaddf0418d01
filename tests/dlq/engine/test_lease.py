"""A batch's lease: only one claim wins, a stale one cannot commit, a dead worker's is recovered."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dlq.engine import process_batch
from dlq.engine.lease import LostClaim, claim_batch, recover_stalled
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQEntry, JobCounters
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(make_job):
    job = make_job(failure_strategy="send_to_dlq")
    return submit_batch(job, [GOOD, BAD])[0]


def test_only_one_claim_of_a_batch_succeeds(batch):
    first = claim_batch(batch.pk)
    assert first is not None
    assert claim_batch(batch.pk) is None
    assert Batch.objects.get(pk=batch.pk).status == "running"


def test_a_batch_that_is_not_due_cannot_be_claimed(batch):
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert claim_batch(batch.pk) is None
    assert process_batch(batch.pk) is None


def test_a_stale_claim_cannot_commit_after_its_batch_was_handed_out_again(batch):
    stale = claim_batch(batch.pk)
    Batch.objects.filter(pk=batch.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert recover_stalled() == 1
    fresh = claim_batch(batch.pk)
    assert fresh is not None
    with pytest.raises(LostClaim):
        stale.lock_batch()
    assert not stale.heartbeat()
    assert fresh.heartbeat()


def test_recovery_counts_the_lost_worker_and_keeps_the_retry_state(batch):
    Batch.objects.filter(pk=batch.pk).update(attempts=1)
    claim_batch(batch.pk)
    Batch.objects.filter(pk=batch.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    recover_stalled()
    batch.refresh_from_db()
    assert (batch.status, batch.lost_attempts, batch.claim_token) == ("retrying", 1, "")
    assert batch.dispatched_at is None


def test_a_live_lease_is_not_recovered(batch):
    claim_batch(batch.pk)
    assert recover_stalled() == 0


def test_a_batch_that_keeps_killing_workers_goes_to_the_dlq_whole(batch, settings):
    settings.VELO_MAX_LOST_ATTEMPTS = 3
    Batch.objects.filter(pk=batch.pk).update(lost_attempts=3)
    assert process_batch(batch.pk) == "failed"
    entries = DLQEntry.objects.order_by("index")
    assert [e.error_type for e in entries] == ["AttemptsLost", "AttemptsLost"]
    assert entries[0].error_message.startswith("3 attempts at this batch ended unrecorded")
    counters = JobCounters.objects.get(job=batch.job)
    assert (counters.records_failed, counters.dlq_added, counters.batches_failed) == (2, 2, 1)


def test_an_unrecorded_attempt_keeps_the_errors_first_line_only_bounded(batch, settings):
    """A database error's DETAIL quotes the failing row, payload and secrets included; the
    batch keeps (and a dead-lettered batch's records would carry) the first line only."""
    from dlq.engine.lease import release

    row_quote = 'DETAIL:  Failing row contains (7, {"password": "S3cr3t-pw!"}).'
    error = ValueError("new row violates check constraint " + "x" * 5000 + "\n" + row_quote)
    release(claim_batch(batch.pk), error)
    batch.refresh_from_db()
    assert batch.lost_attempts == 1
    assert batch.last_error.startswith("attempt not recorded: ValueError: new row violates")
    assert "S3cr3t-pw!" not in batch.last_error and "Failing row" not in batch.last_error
    assert len(batch.last_error) <= settings.VELO_MAX_ERROR_MESSAGE_CHARS
    assert batch.last_error.endswith("characters]")
