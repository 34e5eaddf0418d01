"""The history's windows: the last hour per minute, six hours per 5 minutes, every count exact
against the raw occurrences it stands for."""

from collections import Counter
from copy import copy
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.db.models import F

from errors.context import DeploymentContext
from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup, ErrorVolume, Grain
from errors.selectors import (
    HistoryFilter,
    Window,
    counts_by_group_and_bucket,
    group_counts_by,
    ranking_rollups,
    top_groups,
    totals_by_bucket,
)
from errors.services import Failure, group_failures, save_occurrences

NOW = datetime(2026, 11, 19, 15, 32, 41, tzinfo=UTC)
PLACES = [
    DeploymentContext(node_id="n1", node_name="n1", region="eu", version="1.0"),
    DeploymentContext(node_id="n2", node_name="n2", region="us", version="1.1"),
]


def at(hour, minute):
    return datetime(2026, 11, 19, hour, minute, tzinfo=UTC)


MESSAGES = ["Timeout after 30 s", "Missing required column 'symbol'", "Invalid JSON in 'price'"]


@pytest.mark.parametrize(
    ("key", "count", "step", "first", "current"),
    [
        ("1h", 60, timedelta(minutes=1), (14, 33), (15, 32)),
        ("6h", 72, timedelta(minutes=5), (9, 35), (15, 30)),
    ],
)
def test_the_last_hour_and_six_hours_end_with_the_current_minute_or_five(
    key, count, step, first, current
):
    window = Window.parse(key, now=NOW)

    buckets = window.buckets()

    assert len(buckets) == count
    assert {b - a for a, b in pairwise(buckets)} == {step}
    assert (buckets[0], buckets[-1]) == (at(*first), at(*current))
    assert (window.grain, window.stop) == ("m", at(*current) + step)
    assert window.bucket_of(at(*current) + step - timedelta(seconds=1)) == at(*current)


def test_six_hours_are_counted_per_five_minutes():
    assert Window.parse("6h", now=NOW).grain_name == "5 minutes"
    assert Window.parse("1h", now=NOW).grain_name == "minute"


def test_longer_ranges_keep_their_hourly_and_daily_buckets():
    assert len(Window.parse("24h", now=NOW).buckets()) == 25
    assert Window.parse("24h", now=NOW).grain == "h"
    assert len(Window.parse("7d", now=NOW).buckets()) == 8
    assert Window.parse("30d", now=NOW).grain == "d"


@pytest.fixture
def failures(db):
    """Failures at uneven seconds over the last seven hours, three groups, two nodes."""
    for n in range(400):
        when = NOW - timedelta(seconds=n * 67 + n % 7)
        message = MESSAGES[n % 3 if n % 5 else 0]
        times = 1 + n % 4
        groups = group_failures("orders", [Failure("ValueError", message)] * times, now=when)
        rows = [(group, message, None) for group in groups]
        save_occurrences("orders", rows, now=when, context=PLACES[n % 2])


def raw_counts(window, **places):
    """What the selectors must say, counted from the occurrences themselves."""
    per_group, per_bucket, per_version = Counter(), Counter(), Counter()
    rows = ErrorOccurrence.objects.filter(
        occurred_at__gte=window.start, occurred_at__lt=window.stop, **places
    ).values_list("group_id", "occurred_at", "version", "count")
    for group_id, at, version, n in rows:
        bucket = window.bucket_of(at)
        per_group[group_id] += n
        per_bucket[(group_id, bucket)] += n
        per_version[(group_id, bucket, version)] += n
    return per_group, per_bucket, per_version


def one_row_a_failure():
    """Store each counted occurrence as that many rows of one failure."""
    for occurrence in ErrorOccurrence.objects.filter(count__gt=1):
        n, occurrence.count = occurrence.count, 1
        occurrence.save(update_fields=["count"])
        occurrence.pk = None
        ErrorOccurrence.objects.bulk_create([copy(occurrence) for _ in range(n - 1)])


@pytest.mark.parametrize("key", ["1h", "6h"])
@pytest.mark.parametrize("places", [{}, {"node_id": "n2"}])
def test_minute_and_five_minute_buckets_count_exactly_the_occurrences(failures, key, places):
    flt = HistoryFilter(Window.parse(key, now=NOW), **places)
    per_group, per_bucket, _ = raw_counts(flt.window, **places)

    ranked = {group.pk: n for group, n in top_groups(flt, limit=100)}
    by_bucket = counts_by_group_and_bucket(flt, list(per_group))
    totals = totals_by_bucket(flt)

    assert ranked == dict(per_group)
    assert by_bucket == dict(per_bucket)
    assert set(by_bucket) <= {(pk, b) for pk in per_group for b in flt.window.buckets()}
    assert totals == _sum_by_bucket(per_bucket)
    assert sum(totals.values()) == sum(per_group.values()) > 0
    # The group page's timeline by version is of every place.
    _, _, per_version = raw_counts(flt.window)
    group_id = max(per_group, key=per_group.get)
    by_version = group_counts_by(ErrorGroup.objects.get(pk=group_id), flt.window, "version")
    expected = {(b, v): n for (pk, b, v), n in per_version.items() if pk == group_id}
    assert by_version == expected


def test_six_hours_rank_their_whole_hours_from_the_hourly_rows(failures):
    flt = HistoryFilter(Window.parse("6h", now=NOW))

    grains = set(ranking_rollups(flt).values_list("grain", flat=True))
    minute_rows = ErrorRollup.objects.filter(
        grain="m", bucket__gte=flt.window.start, bucket__lt=flt.window.stop
    ).count()

    assert grains == {"h", "m"}
    assert ranking_rollups(flt).count() < minute_rows * 0.4


def test_the_migration_fills_the_last_six_hours_of_minutes_from_the_occurrences(failures):
    from importlib import import_module

    from django.apps import apps

    def minutes():
        rollups = ErrorRollup.objects.filter(grain=Grain.MINUTE, bucket__gte=since)
        volumes = ErrorVolume.objects.filter(grain=Grain.MINUTE, bucket__gte=since)
        return (
            sorted(rollups.values_list("bucket", "group_id", "node_id", "count")),
            sorted(volumes.values_list("bucket", "job_name", "node_id", "count")),
        )

    migration = import_module("errors.migrations.0008_minute_rollups")
    since = datetime.now(UTC) - migration.FILLED + timedelta(minutes=1)
    # The fixture's failures are at a fixed date: bring them into the last six hours.
    shift = datetime.now(UTC).replace(second=0, microsecond=0) - NOW.replace(second=0)
    ErrorOccurrence.objects.update(occurred_at=F("occurred_at") + shift)
    one_row_a_failure()  # as occurrences were stored when the migration ran (before errors 0010)
    ErrorRollup.objects.update(bucket=F("bucket") + shift)
    ErrorVolume.objects.update(bucket=F("bucket") + shift)
    written = minutes()
    ErrorRollup.objects.filter(grain=Grain.MINUTE).delete()
    ErrorVolume.objects.filter(grain=Grain.MINUTE).delete()

    migration.fill_minutes(apps, None)

    assert minutes() == written
    assert written[0]


def _sum_by_bucket(per_bucket):
    totals = Counter()
    for (_, bucket), n in per_bucket.items():
        totals[bucket] += n
    return dict(totals)
