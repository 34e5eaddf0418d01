"""Retry delays: min(initial × multiplier^(n-1), max), as SPEC §4 gives it."""

import math

import pytest

from dlq.engine.backoff import job_retry_delay, retry_delay
from dlq.models import Job


@pytest.mark.parametrize(
    ("retry_number", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0), (7, 60.0), (8, 60.0)],
)
def test_delay_doubles_from_the_initial_delay_up_to_the_cap(retry_number, expected):
    assert retry_delay(retry_number, initial=1.0, multiplier=2.0, maximum=60.0) == expected


def test_delay_follows_a_fractional_multiplier():
    assert retry_delay(3, initial=0.5, multiplier=1.5, maximum=100.0) == pytest.approx(1.125)


def test_the_cap_applies_even_to_the_first_retry():
    assert retry_delay(1, initial=30.0, multiplier=2.0, maximum=10.0) == 10.0


def test_multiplier_one_keeps_the_delay_constant():
    delays = [retry_delay(n, initial=5.0, multiplier=1.0, maximum=60.0) for n in range(1, 50)]
    assert set(delays) == {5.0}


def test_zero_initial_delay_retries_at_once():
    assert retry_delay(10, initial=0.0, multiplier=2.0, maximum=60.0) == 0.0


@pytest.mark.parametrize("retry_number", [1025, 10_000, 10**9])
def test_a_huge_retry_number_gives_the_cap_without_overflow(retry_number):
    delay = retry_delay(retry_number, initial=1.0, multiplier=2.0, maximum=60.0)
    assert delay == 60.0
    assert math.isfinite(delay)


def test_a_huge_multiplier_gives_the_cap_without_overflow():
    assert retry_delay(400, initial=1.0, multiplier=1e10, maximum=60.0) == 60.0


def test_a_multiplier_near_one_still_reaches_the_cap_on_a_late_retry():
    """1.001^9999 ≈ 21,900, so the formula says the cap; the delay must not stop growing."""
    assert retry_delay(10_000, initial=1.0, multiplier=1.001, maximum=60.0) == 60.0


def test_zero_initial_delay_stays_zero_when_the_power_overflows():
    assert retry_delay(1000, initial=0.0, multiplier=1e10, maximum=60.0) == 0.0


@pytest.mark.parametrize("retry_number", [0, -1])
def test_retry_numbers_below_one_are_refused(retry_number):
    with pytest.raises(ValueError):
        retry_delay(retry_number, initial=1.0, multiplier=2.0, maximum=60.0)


def test_job_retry_delay_reads_the_jobs_settings():
    """An unsaved Job is enough: the delay reads its fields, not the database."""
    job = Job(retry_initial_delay=2.0, retry_multiplier=3.0, retry_max_delay=100.0)
    assert [job_retry_delay(job, n) for n in (1, 2, 3, 4, 5)] == [2.0, 6.0, 18.0, 54.0, 100.0]
