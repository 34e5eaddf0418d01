"""velo_batch_duration_seconds sees the whole attempt: a batch slowed by its writes is slow.

The clock is the frozen one of tests.metrics.workload. The error groups', the
DLQ entries' and the occurrences' writes are made slow in the database itself: a
test-only trigger on their tables passes time on that clock for every row
written (SQLite: a function of this connection; PostgreSQL: a NOTICE the
connection's handler turns into time). Nothing of Velo's is stubbed; the time
passes while Velo's own INSERT (SQLite) or COPY (PostgreSQL) of those rows runs.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from dlq import triage
from dlq.ingest import submit_batch
from dlq.models import Batch, BatchDurationBucket, DLQEntry, Job, JobCounters

from .expected import histogram
from .scraping import velo_samples
from .workload import OPS_SHELL, run_once

pytestmark = pytest.mark.django_db

ENTRIES = "dlq_dlqentry"
OCCURRENCES = "errors_erroroccurrence"
GROUPS = "errors_errorgroup"
TAKES = "velo_test_takes"


class SlowWrites:
    """Each row written into a table takes `seconds` of the frozen clock."""

    def __init__(self, clock):
        self.clock = clock
        self.passed = Counter()  # seconds passed, per table
        self.triggers = []

    def take(self, table, seconds):
        self.passed[table] += seconds
        self.clock.now += timedelta(seconds=seconds)

    def on(self, table, seconds):
        name = f"velo_test_slow_{table}"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Rolled back with the test's transaction, as the function is.
                cursor.execute(
                    f"CREATE TRIGGER {name} AFTER INSERT ON {table} FOR EACH ROW "
                    f"EXECUTE FUNCTION {TAKES}('{table}', '{seconds}')"
                )
            else:
                cursor.execute(
                    f"CREATE TEMP TRIGGER {name} AFTER INSERT ON {table} "
                    f"BEGIN SELECT {TAKES}('{table}', {seconds}); END"
                )
                self.triggers.append(name)  # a connection's own: dropped after the test


@pytest.fixture
def slow_writes(clock):
    slow = SlowWrites(clock)
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "postgresql":

        def on_notice(diagnostic):
            word, *args = (diagnostic.message_primary or "").split(" ")
            if word == TAKES:
                table, seconds = args
                slow.take(table, float(seconds))

        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE FUNCTION {TAKES}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE NOTICE '{TAKES} % %', TG_ARGV[0], TG_ARGV[1]; RETURN NULL; END $$"
            )
        raw.add_notice_handler(on_notice)
        yield slow
        raw.remove_notice_handler(on_notice)
    else:
        raw.create_function(TAKES, 2, slow.take)
        yield slow
        with connection.cursor() as cursor:
            for name in slow.triggers:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def feed_job(**fields):
    """Records take a second each (frozen) and fail with the message they carry."""
    fields = {"failure_strategy": "send_to_dlq", **fields}
    return Job.objects.create(
        name="feed", processor="metrics.tick", config={"seconds": 1}, **fields
    )


def observed(job, scrape):
    """(velo_batch_duration_seconds as scraped, the sum the counters hold, the stored buckets)."""
    _, families = scrape()
    found = {
        key: value
        for key, value in velo_samples(families).items()
        if key[0].startswith("velo_batch_duration_seconds")
    }
    buckets = dict(BatchDurationBucket.objects.filter(job=job).values_list("le", "count"))
    return found, JobCounters.objects.get(job=job).batch_duration_sum, buckets


def test_a_batch_slowed_by_its_dlq_writes_shows_that_time_in_its_duration(
    clock, slow_writes, scrape
):
    job = feed_job()
    slow_writes.on(ENTRIES, 10)
    slow_writes.on(OCCURRENCES, 10)
    slow_writes.on(GROUPS, 10)  # fingerprinting makes the job's first group
    batch, _ = submit_batch(job, [{"error": f"refused {i}"} for i in range(3)])
    batch = run_once(batch)
    assert (batch.status, batch.failed, batch.dlq_added) == ("partial", 3, 3)
    assert DLQEntry.objects.filter(batch=batch).count() == 3

    # 3 s of records, then the new group's, the three entries' and the occurrences' time.
    assert slow_writes.passed[GROUPS] >= 10
    assert slow_writes.passed[ENTRIES] == 30
    assert slow_writes.passed[OCCURRENCES] >= 10
    duration = 3 + slow_writes.passed.total()
    assert batch.finished_at - batch.started_at == timedelta(seconds=duration)
    assert batch.finished_at == clock.now
    assert observed(job, scrape) == (
        histogram("feed", [duration], duration),
        duration,
        {min(le for le in BatchDurationBucket.BOUNDS if duration <= le): 1},
    )


def test_a_held_batch_whose_late_store_is_slow_counts_it_from_its_first_claim(
    clock, slow_writes, scrape
):
    job = feed_job(dlq_max_size=1, dlq_full_policy="backpressure")
    batch, _ = submit_batch(job, [{"error": "first refusal"}, {"error": "second refusal"}])
    assert run_once(batch).status == "retrying"  # the second failure waits for room

    triage.discard(DLQEntry.objects.filter(job=job), actor=OPS_SHELL)
    clock.at(30)
    slow_writes.on(ENTRIES, 10)
    batch = run_once(batch)
    assert (batch.status, batch.dlq_added) == ("partial", 2)

    # Claimed at 0, stored again at 30: the held entry's write takes 10 s more.
    assert slow_writes.passed == {ENTRIES: 10}
    assert batch.finished_at - batch.started_at == timedelta(seconds=40)
    assert observed(job, scrape) == (histogram("feed", [40.0], 40.0), 40.0, {60.0: 1})


def test_a_retried_batch_runs_from_its_first_claim_to_the_end_of_its_last_attempt(
    clock, slow_writes, scrape
):
    job = feed_job(failure_strategy="fail_batch", max_retries=1)
    batch, _ = submit_batch(job, [{"n": 0}, {"error": "refused"}])
    assert run_once(batch).status == "retrying"
    clock.at(100)
    slow_writes.on(ENTRIES, 10)
    batch = run_once(batch)
    assert (batch.status, batch.attempts, batch.dlq_added) == ("failed", 2, 2)

    # First claim at 0; the retry at 100 runs 2 s of records, then 20 s of entries.
    assert slow_writes.passed == {ENTRIES: 20}
    assert Batch.objects.get(pk=batch.pk).finished_at == clock.now
    assert batch.finished_at - batch.started_at == timedelta(seconds=122)
    assert observed(job, scrape) == (histogram("feed", [122.0], 122.0), 122.0, {300.0: 1})
