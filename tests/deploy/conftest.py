"""Fixtures for the monitoring kit's tests: a Velo with something in every velo_* family."""

import shutil

import pytest

from dlq.models import Job
from tests.conftest import BAD, GOOD


def populate(run_batch):
    """Two jobs with failures, pending DLQ entries and one entry refused at capacity.

    Returns {job name: DLQ entries added}, which /metrics must report.
    """
    orders = Job.objects.create(name="orders", processor="demo.trades")
    run_batch(orders, [GOOD, BAD, GOOD, BAD, {"symbol": "ACME", "price": "ten"}])
    run_batch(orders, [GOOD] * 3 + [BAD])
    trades = Job.objects.create(
        name="trades", processor="demo.trades", failure_strategy="log_and_continue", dlq_max_size=1
    )
    run_batch(trades, [BAD, BAD, GOOD])  # the second failure finds the DLQ full
    return {"orders": 4, "trades": 1}


@pytest.fixture
def populated(db, run_batch):
    return populate(run_batch)


def need(binary):
    """The path of a Debian `prometheus` package binary, or skip the test saying why."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(
            f"{binary} is not on PATH: install Debian's prometheus package "
            "(apt-get install prometheus) to run this check"
        )
    return path
