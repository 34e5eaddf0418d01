"""Tracebacks stored per failure site (issue 14): one head a site, every entry's read whole."""

import threading
import time

import pytest
from django.db import connection, transaction

from dlq import tracebacks
from dlq.models import DLQEntry, TracebackHead
from tests.dlq.factories import captured_tracebacks

pytestmark = pytest.mark.django_db


def stored(batch):
    """{index: full traceback} of the batch's entries, read as every page reads them."""
    entries = DLQEntry.objects.filter(batch=batch).select_related("traceback_head")
    return {entry.index: entry.full_traceback for entry in entries}


def test_a_storm_of_1000_failures_stores_one_head_and_every_traceback_as_captured(
    make_job, run_batch
):
    job = make_job("storm", processor="test.fails_with", dlq_max_size=None)
    records = [{"message": f"record {i} refused"} for i in range(1000)]
    batch = run_batch(job, records)

    assert TracebackHead.objects.count() == 1
    assert stored(batch) == captured_tracebacks(job, records)
    # Each entry keeps its own final line; the frames are the site's.
    entry = DLQEntry.objects.get(batch=batch, index=7)
    assert entry.traceback == "tests.processors.ValueError: record 7 refused\n"
    assert entry.full_traceback.startswith("Traceback (most recent call last):\n")


def test_two_failure_sites_in_one_batch_store_two_heads(make_job, run_batch):
    job = make_job("trades")  # demo.trades: no symbol, and a price that is no number
    records = [{"price": 1}, {"symbol": "ACME", "price": "abc"}, {"price": 2}]
    batch = run_batch(job, records)

    assert TracebackHead.objects.count() == 2
    assert stored(batch) == captured_tracebacks(job, records)
    heads = dict(DLQEntry.objects.filter(batch=batch).values_list("index", "traceback_head"))
    assert heads[0] == heads[2] != heads[1]


def test_a_batch_at_known_sites_adds_no_head(make_job, run_batch):
    job = make_job("trades")
    run_batch(job, [{"price": 1}])
    batch = run_batch(job, [{"price": 2}, {"price": 3}])

    assert TracebackHead.objects.count() == 1
    assert stored(batch) == captured_tracebacks(job, [{"price": 2}, {"price": 3}])


def test_a_chained_exception_is_stored_whole(make_job, run_batch):
    job = make_job("chained", processor="test.fails_chained")
    records = [{"n": 1}, {"n": 2}]
    batch = run_batch(job, records)

    expected = captured_tracebacks(job, records)
    assert "The above exception was the direct cause" in expected[0]
    assert dict(DLQEntry.objects.values_list("index", "traceback")) == expected
    assert not TracebackHead.objects.exists()
    assert stored(batch) == expected


def test_a_traceback_cut_in_its_middle_is_stored_whole(make_job, run_batch, settings):
    settings.VELO_MAX_TRACEBACK_CHARS = 300
    job = make_job("long", processor="test.fails_with")
    records = [{"message": "x" * 500}]
    batch = run_batch(job, records)

    expected = captured_tracebacks(job, records)
    assert "… [truncated, " in expected[0]
    assert DLQEntry.objects.get(batch=batch).traceback == expected[0]
    assert not TracebackHead.objects.exists()


def test_a_failed_batch_stores_its_cause_traceback_and_none_for_the_others(make_job, run_batch):
    job = make_job("all-or-nothing", failure_strategy="fail_batch", max_retries=0)
    records = [{"symbol": "ACME", "price": 1}, {"price": 1}, {"symbol": "ACME", "price": 2}]
    batch = run_batch(job, records)

    assert batch.status == "failed"
    assert stored(batch) == {0: "", 1: captured_tracebacks(job, records)[1], 2: ""}
    assert TracebackHead.objects.count() == 1


class RolledBack(Exception):
    pass


def test_a_head_written_in_a_transaction_that_rolls_back_is_written_again(make_job):
    job = make_job("trades")
    [text] = captured_tracebacks(job, [{"price": 1}]).values()
    with pytest.raises(RolledBack), transaction.atomic():
        tracebacks.store_heads([text])
        raise RolledBack

    [kept] = tracebacks.store_heads([text])
    assert TracebackHead.objects.get(pk=kept.head_id).text + kept.rest == text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_commits", [True, False])
def test_a_head_another_writer_is_inserting_is_waited_for_then_read(make_job, first_commits):
    """PostgreSQL: the second writer of a new head waits for the first's transaction, then
    reads the row that is there (the first's, or its own if the first rolled back)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: SQLite has one writer at a time")
    job = make_job("trades")
    [text] = captured_tracebacks(job, [{"price": 1}]).values()
    inserted, finish, out = threading.Event(), threading.Event(), {}

    def first():
        try:
            with transaction.atomic():
                out["first"] = tracebacks.store_heads([text])[0]
                inserted.set()
                finish.wait()
                if not first_commits:
                    transaction.set_rollback(True)
        finally:
            connection.close()

    def second():
        try:
            with transaction.atomic():
                out["second"] = tracebacks.store_heads([text])[0]
        finally:
            connection.close()

    writers = [threading.Thread(target=first), threading.Thread(target=second)]
    writers[0].start()
    assert inserted.wait(30)
    writers[1].start()
    try:
        _wait_for_a_lock_wait()
    finally:
        finish.set()
        for writer in writers:
            writer.join()

    kept = out["second"]
    assert TracebackHead.objects.get(pk=kept.head_id).text + kept.rest == text
    assert (kept.head_id == out["first"].head_id) is first_commits
    assert TracebackHead.objects.count() == 1


def _wait_for_a_lock_wait():
    """Until a session of this database waits on a lock (the second writer on the first)."""
    for _ in range(600):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("the second writer never waited for the first")
