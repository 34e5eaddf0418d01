"""DLQ health (SPEC §5): four literal status strings, thresholds compared with ≥."""

from datetime import UTC, datetime

import pytest

from dlq import health
from dlq.models import Job, JobCounters
from tests.contract import HEALTH_JSON_KEYS


def test_the_status_strings_are_the_literal_spec_strings():
    """Alerts and dashboards match these exact strings."""
    assert health.HEALTHY == "HEALTHY"
    assert health.CAUTION == "CAUTION - >70% full"
    assert health.WARNING == "WARNING - >90% full"
    assert health.CRITICAL == "CRITICAL - at capacity"


@pytest.mark.parametrize(
    ("current_size", "max_size", "expected"),
    [
        (0, 1000, "HEALTHY"),
        (699, 1000, "HEALTHY"),  # 69.9 %
        (6999, 10_000, "HEALTHY"),  # 69.99 %
        (700, 1000, "CAUTION - >70% full"),  # 70 %
        (899, 1000, "CAUTION - >70% full"),  # 89.9 %
        (900, 1000, "WARNING - >90% full"),  # 90 %
        (999, 1000, "WARNING - >90% full"),  # 99.9 %
        (1000, 1000, "CRITICAL - at capacity"),  # 100 %
        (1500, 1000, "CRITICAL - at capacity"),  # over capacity
        (7, 10, "CAUTION - >70% full"),
        (9, 10, "WARNING - >90% full"),
    ],
)
def test_status_thresholds_are_inclusive(current_size, max_size, expected):
    assert health.health_status(current_size, max_size) == expected


@pytest.mark.parametrize("current_size", [0, 70, 10**12])
def test_an_unbounded_dlq_is_always_healthy(current_size):
    assert health.health_status(current_size, None) == "HEALTHY"


def test_a_dlq_of_size_zero_is_always_at_capacity():
    assert health.health_status(0, 0) == "CRITICAL - at capacity"


@pytest.mark.parametrize(
    ("current_size", "max_size", "expected"),
    [(0, 100, 0.0), (25, 100, 25.0), (150, 100, 150.0), (5, None, 0.0), (5, 0, 100.0)],
)
def test_capacity_usage_percent(current_size, max_size, expected):
    assert health.capacity_usage_percent(current_size, max_size) == pytest.approx(expected)


def test_each_status_has_its_metrics_level():
    assert health.LEVELS == {
        "HEALTHY": 0,
        "CAUTION - >70% full": 1,
        "WARNING - >90% full": 2,
        "CRITICAL - at capacity": 3,
    }


LAST_ENTRY = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
LAST_FULL = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def counters(**values):
    values.setdefault("dlq_added", 120)
    values.setdefault("dlq_rejected", 4)
    values.setdefault("last_entry_at", LAST_ENTRY)
    values.setdefault("last_capacity_exceeded_at", LAST_FULL)
    return JobCounters(**values)


def test_job_health_reads_the_jobs_counters():
    """No COUNT over the DLQ: every number comes from the counters row."""
    summary = health.job_health(Job(name="orders", dlq_max_size=200), counters(dlq_pending=180))
    assert summary == health.DLQHealth(
        job="orders",
        current_size=180,
        max_size=200,
        capacity_usage_percent=90.0,
        is_at_capacity=False,
        entries_added=120,
        entries_rejected=4,
        last_entry_time=LAST_ENTRY,
        last_capacity_exceeded_time=LAST_FULL,
        status="WARNING - >90% full",
    )


def test_job_health_at_capacity():
    summary = health.job_health(Job(name="orders", dlq_max_size=200), counters(dlq_pending=200))
    assert summary.is_at_capacity
    assert summary.status == "CRITICAL - at capacity"


def test_job_health_of_an_unbounded_dlq():
    summary = health.job_health(Job(name="orders", dlq_max_size=None), counters(dlq_pending=10**6))
    assert not summary.is_at_capacity
    assert summary.capacity_usage_percent == 0.0
    assert summary.status == "HEALTHY"


def test_as_json_has_exactly_the_spec_keys():
    summary = health.job_health(Job(name="orders", dlq_max_size=3), counters(dlq_pending=1))
    assert tuple(summary.as_json()) == HEALTH_JSON_KEYS


def test_as_json_gives_iso_times_and_a_rounded_percentage():
    summary = health.job_health(Job(name="orders", dlq_max_size=3), counters(dlq_pending=1))
    data = summary.as_json()
    assert data["capacity_usage_percent"] == 33.33
    assert data["last_entry_time"] == "2024-05-01T10:00:00+00:00"
    assert data["last_capacity_exceeded_time"] == "2024-05-01T09:30:00+00:00"


def test_as_json_gives_null_for_times_never_reached():
    summary = health.job_health(
        Job(name="orders"),
        counters(dlq_pending=0, last_entry_at=None, last_capacity_exceeded_at=None),
    )
    data = summary.as_json()
    assert data["last_entry_time"] is None
    assert data["last_capacity_exceeded_time"] is None


def test_all_jobs_health_lists_every_job_by_name_from_its_counters(make_job):
    make_job("zeta", dlq_max_size=10)
    make_job("alpha", dlq_max_size=None)
    JobCounters.objects.filter(job__name="zeta").update(dlq_pending=7, dlq_added=9)
    summaries = health.all_jobs_health()
    assert [(s.job, s.current_size, s.entries_added, s.status) for s in summaries] == [
        ("alpha", 0, 0, "HEALTHY"),
        ("zeta", 7, 9, "CAUTION - >70% full"),
    ]


def test_all_jobs_health_reads_in_one_query(make_job, django_assert_num_queries):
    for name in ("a", "b", "c"):
        make_job(name)
    with django_assert_num_queries(1):
        health.all_jobs_health()


def test_a_job_without_a_counters_row_shows_zeros(make_job):
    """A job loaded without its counters (a raw fixture) must not break the health page."""
    make_job("bare")
    JobCounters.objects.filter(job__name="bare").delete()
    [summary] = health.all_jobs_health()
    assert (summary.current_size, summary.entries_added, summary.status) == (0, 0, "HEALTHY")
