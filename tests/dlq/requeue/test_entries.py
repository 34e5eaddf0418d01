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


@pytest.mark.django_db
def test_entries_failing_again_each_get_their_own_new_error_in_one_update():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from errors.models import ErrorGroup
    from tests.dlq.factories import auth_job, fail_with

    job = auth_job()
    messages = ["Timeout after 3001 ms", "Connection reset by peer", "Missing column 'symbol'"]
    fail_with(job, messages)
    DLQEntry.objects.update(error_message="old", error_type="Old", traceback="")
    run = RequeueRun.objects.create(
        created_by="ops", filters={"job": job.name}, status=RequeueRun.Status.RUNNING
    )
    claimed = entries.claim(list(DLQEntry.objects.values_list("pk", flat=True)), run)
    with CaptureQueriesContext(connection) as queries:
        result = entries.reprocess(claimed, run, started_by="ops")
    assert (result.succeeded, result.failed) == (0, 3)
    for entry in DLQEntry.objects.order_by("index"):
        message = messages[entry.index]
        assert (entry.status, entry.attempts, entry.requeue_run_id, entry.claimed_until) == (
            "pending",
            2,
            None,
            None,
        )
        assert (entry.error_message, entry.error_type) == (message, "ValueError")
        assert entry.error_message_length == len(message)
        assert entry.traceback.endswith(f"ValueError: {message}\n")
        assert ErrorGroup.objects.get(pk=entry.error_group_id).last_message == message
    # However many entries failed again.
    error_writes = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('UPDATE "dlq_dlqentry"') and '"error_message"' in q["sql"]
    ]
    assert len(error_writes) == 1


def test_each_requeued_entry_has_its_own_record_timeout_and_the_alarm_is_handed_back(
    make_job, run_batch
):
    import signal

    from dlq import requeue
    from dlq.requeue import RequeueOptions, RequeueScope

    job = make_job(
        name="hangs", processor="test.hangs", record_timeout=0.5, failure_strategy="send_to_dlq"
    )
    run_batch(job, [{"hang": "sleep", "seconds": 5}] * 4)
    DLQEntry.objects.filter(index__in=[1, 3]).update(payload={})  # these now succeed
    before = signal.getsignal(signal.SIGALRM)
    run = requeue.run_here(RequeueScope.matching(job="hangs"), RequeueOptions(), OPS)
    assert (run.succeeded, run.failed) == (2, 2)
    assert sorted(DLQEntry.objects.values_list("index", "status", "error_type")) == [
        (0, "pending", "RecordTimeout"),
        (1, "resolved", "RecordTimeout"),
        (2, "pending", "RecordTimeout"),
        (3, "resolved", "RecordTimeout"),
    ]
    assert signal.getsignal(signal.SIGALRM) == before


@pytest.mark.django_db(transaction=True)
def test_a_chunk_is_claimed_ahead_while_the_current_one_commits():
    """The claim's deferred foreign-key check on its run must not wait for a chunk's commit,
    which holds the run from its start to its end (the claim ahead would stall behind it)."""
    import threading

    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL row locks")
    failing_entries(4)
    run = RequeueRun.objects.create(
        created_by="ops", filters={"job": "orders"}, status=RequeueRun.Status.RUNNING
    )
    ids = sorted(DLQEntry.objects.values_list("pk", flat=True))
    claimed, errors = [], []

    def claim_ahead():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
            claimed.extend(entries.claim(ids[2:], run))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        assert entries.still_holds(run)  # as a chunk's commit begins
        ahead = threading.Thread(target=claim_ahead)
        ahead.start()
        ahead.join()
    assert errors == [] and len(claimed) == 2
