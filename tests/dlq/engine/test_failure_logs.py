"""A batch logs the first failures of each error group in full, then one line per group with
the number it did not log (SPEC §4, issue 14): a storm is a few lines, its counts stay exact."""

import logging
import re

import pytest

from dlq import requeue
from dlq.actors import Actor
from dlq.models import DLQEntry, Job
from dlq.requeue import RequeueOptions, RequeueScope
from errors.models import ErrorGroup
from tests.dlq.factories import counters, failing_entries

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "required": ["symbol"],
    "properties": {"symbol": {"type": "string"}, "price": {"type": "number"}},
}
NO_SYMBOL = {"price": 1}  # Field 'symbol': missing (required)
BAD_PRICE = {"symbol": "ACME", "price": "ten"}  # Field 'price': not of type 'number'
FULL = re.compile(r"^job orders: record (\d+) of batch \d+ failed \(attempt 1\): (.*)$")
SUMMARY = re.compile(
    r'^job orders: batch (\d+) attempt 1: ([\d,]+) more failures like "(.*)" \(group (\d+)\) '
    r"not logged$"
)


def orders(**fields):
    return Job.objects.create(
        name="orders", processor="json_schema", config={"schema": SCHEMA}, **fields
    )


@pytest.fixture
def job():
    return orders(failure_strategy="send_to_dlq")


def logged(caplog, run):
    with caplog.at_level(logging.WARNING, logger="velo.records"):
        batch = run()
    lines = [r.getMessage() for r in caplog.records if r.name == "velo.records"]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "velo.records")
    full = [m for line in lines if (m := FULL.match(line))]
    summaries = [m for line in lines if (m := SUMMARY.match(line))]
    assert len(full) + len(summaries) == len(lines), lines
    return batch, full, summaries


def group_of(message):
    return ErrorGroup.objects.get(last_message=message).pk


def test_a_storm_of_two_errors_logs_three_lines_of_each_and_one_summary_each(
    job, run_batch, caplog
):
    records = [NO_SYMBOL if i % 5 < 3 else BAD_PRICE for i in range(1000)]  # 600 and 400
    batch, full, summaries = logged(caplog, lambda: run_batch(job, records))

    missing, price = "Field 'symbol': missing (required)", "Field 'price': not of type 'number'"
    # The first three of each group, in full, in record order (3, 4 and 8: price).
    assert [(int(m[1]), m[2]) for m in full] == [
        (0, f"RecordInvalid: {missing}"),
        (1, f"RecordInvalid: {missing}"),
        (2, f"RecordInvalid: {missing}"),
        (3, f"RecordInvalid: {price}"),
        (4, f"RecordInvalid: {price}"),
        (8, f"RecordInvalid: {price}"),
    ]
    assert sorted((int(m[1]), m[2], m[3], int(m[4])) for m in summaries) == sorted(
        [
            (batch.pk, "597", missing, group_of(missing)),
            (batch.pk, "397", price, group_of(price)),
        ]
    )
    # Only the log is shortened: every failure is counted, stored and recorded.
    assert (batch.processed, batch.failed, batch.dlq_added) == (1000, 1000, 1000)
    assert counters(job).records_failed == 1000
    assert DLQEntry.objects.filter(batch=batch).count() == 1000
    assert sorted(ErrorGroup.objects.values_list("count", flat=True)) == [400, 600]


def test_a_group_of_three_failures_or_fewer_gets_no_summary(job, run_batch, caplog):
    records = [NO_SYMBOL] * 997 + [BAD_PRICE] * 3
    _, full, summaries = logged(caplog, lambda: run_batch(job, records))
    assert [int(m[1]) for m in full] == [0, 1, 2, 997, 998, 999]
    [summary] = summaries
    assert (summary[2], summary[3]) == ("994", "Field 'symbol': missing (required)")

    caplog.clear()
    _, full, summaries = logged(caplog, lambda: run_batch(job, [NO_SYMBOL, BAD_PRICE] * 2))
    assert [int(m[1]) for m in full] == [0, 1, 2, 3]
    assert summaries == []


def test_with_the_setting_at_0_a_batch_logs_only_its_summaries(job, run_batch, caplog, settings):
    settings.VELO_LOG_FAILURES_PER_GROUP = 0
    batch, full, summaries = logged(
        caplog, lambda: run_batch(job, [NO_SYMBOL] * 1200 + [BAD_PRICE])
    )
    assert full == []
    assert sorted((m[2], m[3]) for m in summaries) == [
        ("1", "Field 'price': not of type 'number'"),
        ("1,200", "Field 'symbol': missing (required)"),
    ]
    assert batch.failed == 1201


def test_the_setting_sets_how_many_are_logged_in_full(job, run_batch, caplog, settings):
    settings.VELO_LOG_FAILURES_PER_GROUP = 10
    _, full, summaries = logged(caplog, lambda: run_batch(job, [NO_SYMBOL] * 50))
    assert [int(m[1]) for m in full] == list(range(10))
    assert [m[2] for m in summaries] == ["40"]


def test_each_attempt_of_a_retried_batch_logs_its_own(run_batch, caplog):
    job = orders(failure_strategy="retry_with_backoff", max_retries=2)
    with caplog.at_level(logging.WARNING, logger="velo.records"):
        batch = run_batch(job, [NO_SYMBOL] * 20)
    lines = [r.getMessage() for r in caplog.records if r.name == "velo.records"]
    for attempt in (1, 2, 3):
        mine = [line for line in lines if f"attempt {attempt}" in line]
        assert len(mine) == 4, lines
        assert f"batch {batch.pk} attempt {attempt}: 17 more failures like" in mine[-1]
    assert batch.failed == 60


def test_a_requeue_chunk_logs_its_failures_the_same_way(caplog, settings):
    settings.VELO_REQUEUE_CHUNK = 50
    failing_entries(20)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="velo.records"):
        run = requeue.run_here(
            RequeueScope.matching(job="orders"), RequeueOptions(), Actor("ops", "admin")
        )
    assert (run.done, run.failed) == (20, 20)
    lines = [r.getMessage() for r in caplog.records if r.name == "velo.records"]
    assert len(lines) == 4, lines
    assert all(" failed (attempt 2): RecordInvalid: " in line for line in lines[:3])
    group = ErrorGroup.objects.get().pk
    assert lines[3] == (
        f"job orders: requeue run {run.pk}: 17 more failures like "
        f"\"Field 'symbol': missing (required)\" (group {group}) not logged"
    )


def test_failures_reported_in_one_line_stay_one_line(run_batch, caplog):
    job = Job.objects.create(name="orders", processor="no.such", failure_strategy="send_to_dlq")
    with caplog.at_level(logging.WARNING, logger="velo.records"):
        batch = run_batch(job, [NO_SYMBOL] * 50)
    [line] = [r for r in caplog.records if r.name == "velo.records"]
    assert line.levelno == logging.ERROR
    assert "unknown processor 'no.such': the 50 records of batch" in line.getMessage()
    assert batch.failed == 50
