"""HTTP submit → a real Celery worker → DLQ, errors, counters and batch status, per strategy."""

import pytest

from dlq.models import DLQEntry, Job, JobCounters
from errors.models import ErrorGroup
from tests.conftest import BAD, GOOD, occurrences

pytestmark = pytest.mark.worker


def make_job(name, **fields):
    fields.setdefault("processor", "demo.trades")
    fields.setdefault("retry_initial_delay", 0.2)
    return Job.objects.create(name=name, **fields)


def counters(name):
    c = JobCounters.objects.get(job__name=name)
    return c.records_processed, c.records_failed, c.dlq_added


def test_every_strategy_through_a_real_worker(worker, api):
    cases = {
        "lac": ("log_and_continue", ("partial", 100, 2, 2, 1)),
        "dlq": ("send_to_dlq", ("partial", 100, 2, 2, 1)),
        "fail": ("fail_batch", ("failed", 300, 300, 100, 3)),
        "retry": ("retry_with_backoff", ("partial", 104, 6, 2, 3)),
    }
    batches = {}
    for name, (strategy, _) in cases.items():
        make_job(name, failure_strategy=strategy, max_retries=2)
        records = [GOOD] * 98 + [BAD] * 2
        batches[name] = api.submit(name, records)["batch_id"]
    for name, (_, expected) in cases.items():
        body = api.wait_until_final(batches[name])
        _, processed, failed, dlq_added, _ = expected
        assert (
            body["status"],
            body["processed"],
            body["failed"],
            body["dlq_added"],
            body["attempts"],
        ) == expected, name
        assert counters(name) == (processed, failed, dlq_added)
        assert DLQEntry.objects.filter(job__name=name).count() == dlq_added
    # Occurrences: one per failed record attempt, except fail_batch's bystanders.
    assert occurrences(job_name="lac") == 2
    assert occurrences(job_name="fail") == 3
    assert occurrences(job_name="retry") == 6
    assert ErrorGroup.objects.filter(job_name="retry").get().count == 6


def test_retry_with_backoff_recovers_transient_failures_on_a_worker(worker, api):
    make_job(
        "recovers",
        processor="demo.flaky",
        config={"fail_attempts": 2},
        failure_strategy="retry_with_backoff",
        max_retries=3,
    )
    make_job(
        "gives-up",
        processor="demo.flaky",
        config={"fail_attempts": 9},
        failure_strategy="retry_with_backoff",
        max_retries=2,
    )
    recovered = api.submit("recovers", [{"n": i} for i in range(10)])["batch_id"]
    gave_up = api.submit("gives-up", [{"n": i} for i in range(4)])["batch_id"]
    body = api.wait_until_final(recovered)
    assert (body["status"], body["attempts"], body["processed"], body["failed"]) == (
        "succeeded",
        3,
        30,
        20,
    )
    assert not DLQEntry.objects.filter(job__name="recovers").exists()
    body = api.wait_until_final(gave_up)
    assert (body["status"], body["attempts"], body["dlq_added"]) == ("partial", 3, 4)
    messages = set(
        DLQEntry.objects.filter(job__name="gives-up").values_list("error_message", flat=True)
    )
    assert messages == {"Transient failure (attempt 3)"}


def test_fail_batch_retries_the_whole_batch_then_dead_letters_all_of_it(worker, api):
    make_job("ledger", failure_strategy="fail_batch", max_retries=2)
    body = api.wait_until_final(api.submit("ledger", [GOOD] * 9 + [BAD])["batch_id"])
    assert (
        body["status"],
        body["attempts"],
        body["processed"],
        body["failed"],
        body["dlq_added"],
    ) == (
        "failed",
        3,
        30,
        30,
        10,
    )
    assert JobCounters.objects.get(job__name="ledger").batch_retries == 2
    assert DLQEntry.objects.filter(error_message__startswith="Batch failed: ").count() == 9
