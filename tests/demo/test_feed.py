"""`velo_demo`: the demo jobs, fed a seeded, realistic mix of good and bad records."""

import json
import random

import pytest

from demo import feed as demo
from dlq.models import Batch, Job
from tests.commands import run

pytestmark = pytest.mark.django_db


def test_velo_demo_creates_the_demo_jobs_and_submits_the_records(db):
    out, _ = run("velo_demo", "--records", "300")

    jobs = {job.name: job for job in Job.objects.all()}
    assert set(jobs) == {"trades", "orders", "ledger", "flaky-feed", "payments"}
    assert {job.failure_strategy for job in jobs.values()} == {
        "log_and_continue",
        "send_to_dlq",
        "fail_batch",
        "retry_with_backoff",
    }
    assert jobs["orders"].dlq_max_size == 5000
    batches = Batch.objects.all()
    assert sum(b.record_count for b in batches) == 300
    assert {b.job.name for b in batches} == set(jobs)  # every job gets traffic
    assert all(b.record_count <= 100 for b in batches)
    assert "Created demo jobs" in out
    assert "Submitted 300 records" in out


def is_bad(record):
    return not record.get("symbol") or not isinstance(record["price"], float) or record["qty"] < 1


def test_velo_demo_mixes_in_a_few_bad_records(db):
    run("velo_demo", "--records", "1000")

    records = [r for b in Batch.objects.all() for r in b.records]
    assert 10 <= sum(map(is_bad, records)) <= 80


def test_velo_demo_gives_the_fail_batch_job_one_bad_record_in_its_first_batch(db):
    run("velo_demo", "--records", "1000")

    first, second = Batch.objects.filter(job__name="ledger").order_by("pk")
    assert sum(map(is_bad, first.records)) == 1
    assert sum(map(is_bad, second.records)) == 0


def test_velo_demo_a_second_run_keeps_the_jobs_and_adds_traffic(db):
    run("velo_demo", "--records", "300")
    Job.objects.filter(name="payments").update(dlq_max_size=10)  # edited in the admin
    job_ids = sorted(Job.objects.values_list("pk", flat=True))

    out, _ = run("velo_demo", "--records", "300")

    assert sorted(Job.objects.values_list("pk", flat=True)) == job_ids
    assert Job.objects.get(name="payments").dlq_max_size == 10
    assert "Demo jobs exist" in out
    assert sum(b.record_count for b in Batch.objects.all()) == 600


def test_velo_demo_records_are_the_same_for_the_same_seed(db):
    run("velo_demo", "--records", "200", "--seed", "7")
    first = sorted(json.dumps(b.records, sort_keys=True) for b in Batch.objects.all())
    Batch.objects.all().delete()

    run("velo_demo", "--records", "200", "--seed", "7")

    assert sorted(json.dumps(b.records, sort_keys=True) for b in Batch.objects.all()) == first


def test_feeding_forever_submits_small_batches_until_interrupted(db):
    demo.ensure_demo_jobs()
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.feed_forever(demo.Feed(random.Random(1)), interval=2.0, sleep=sleep)

    assert naps == [2.0, 2.0, 2.0]
    assert [10 <= b.record_count <= 50 for b in Batch.objects.all()] == [True] * 3
