"""What a requeue does to each entry: claimed once, and given back when its claim runs out."""

import pytest

from dlq.actors import Actor
from dlq.models import DLQEntry, RequeueRun
from dlq.requeue import entries
from tests.dlq.factories import counters, failing_entries

OPS = Actor("ops", "admin")


@pytest.mark.django_db
def test_an_expired_requeue_claim_goes_back_to_pending():
    from datetime import timedelta

    from django.utils import timezone

    job = failing_entries(2)
    run = RequeueRun.objects.create(created_by="ops", filters={"job": "orders"})
    claimed = entries.claim(list(DLQEntry.objects.values_list("pk", flat=True)), run)
    assert len(claimed) == 2 and counters(job).dlq_pending == 2  # still taking their place
    DLQEntry.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert entries.recover_expired_claims() == 2
    assert counters(job).dlq_pending == 2
    # The worker that lost its claim comes back: it must not resolve anything.
    result = entries.reprocess(claimed, run, started_by="ops")
    assert (result.succeeded, result.failed, result.skipped) == (0, 0, 2)
    assert set(DLQEntry.objects.values_list("status", flat=True)) == {"pending"}


def test_a_claimed_entry_is_read_in_the_order_of_its_fields():
    from dataclasses import fields

    names = [name for name, _ in entries.CLAIMED]
    assert names == [f.name for f in fields(entries.ClaimedEntry)][: len(names)]
