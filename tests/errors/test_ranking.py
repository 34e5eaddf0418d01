"""Ranking groups over long windows: whole weeks from weekly rollups, the edges from days."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from errors.context import DeploymentContext
from errors.models import ErrorRollup
from errors.selectors import HistoryFilter, Window, ranking_rollups, top_groups
from errors.services import Failure, group_failures, save_occurrences

THURSDAY = datetime(2026, 11, 19, 15, 30, tzinfo=UTC)
SUNDAY = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)  # a 7-day window holds a whole week
MONDAY = datetime(2026, 11, 23, 0, 5, tzinfo=UTC)
PLACES = [
    DeploymentContext(node_id="n1", node_name="n1", region="eu", version="1.0"),
    DeploymentContext(node_id="n2", node_name="n2", region="us", version="1.1"),
]


def record(message, when, place, times=1):
    failures = [Failure("ValueError", message)] * times
    groups = group_failures("orders", failures, now=when)
    save_occurrences("orders", [(g, message, None) for g in groups], now=when, context=place)


@pytest.fixture(params=[THURSDAY, SUNDAY, MONDAY], ids=["thursday", "sunday", "monday"])
def now(request):
    """Where the week stands: a window's edges fall on other days of the week."""
    return request.param


@pytest.fixture
def history(db, now):
    """Failures on every day of the last seven weeks, more for some groups, on two nodes."""
    for day in range(49):
        when = now - timedelta(days=day, hours=day % 5)
        record("Timeout after 30 s", when, PLACES[day % 2], times=1 + day % 3)
        if day % 4 == 0:
            record("Missing required column 'symbol'", when, PLACES[0], times=5)


def daily_totals(window, **places):
    rows = ErrorRollup.objects.filter(
        grain="d", bucket__gte=window.start, bucket__lte=window.end, **places
    )
    return dict(rows.values_list("group_id").annotate(n=Sum("count")))


@pytest.mark.parametrize("key", ["7d", "30d"])
@pytest.mark.parametrize("places", [{}, {"node_id": "n1"}, {"region": "us"}])
def test_weeks_and_days_add_up_to_the_daily_counts(history, now, key, places):
    flt = HistoryFilter(Window.parse(key, now=now), **places)

    ranked = {group.pk: n for group, n in top_groups(flt, limit=100)}

    assert ranked == daily_totals(flt.window, **places)
    assert ranked  # the window holds failures of every kind asked for


def test_a_month_reads_whole_weeks_from_the_weekly_rows(history, now):
    flt = HistoryFilter(Window.parse("30d", now=now))
    grains = set(ranking_rollups(flt).values_list("grain", flat=True))
    assert grains == {"w", "d"}
    assert (
        ranking_rollups(flt).count()
        < ErrorRollup.objects.filter(
            grain="d", bucket__gte=flt.window.start, bucket__lte=flt.window.end
        ).count()
        * 0.6
    )


def test_the_migrations_fill_volumes_and_weeks_from_the_daily_rows(history):
    """What 0004 and 0005 build from an installation's existing rollups."""
    from importlib import import_module

    from django.apps import apps

    from errors.models import ErrorVolume

    def snapshot():
        weeks = ErrorRollup.objects.filter(grain="w").values_list(
            "bucket", "group_id", "node_id", "count"
        )
        volumes = ErrorVolume.objects.values_list("grain", "bucket", "job_name", "node_id", "count")
        return sorted(weeks), sorted(volumes)

    written = snapshot()
    ErrorRollup.objects.filter(grain="w").delete()
    ErrorVolume.objects.all().delete()
    import_module("errors.migrations.0004_error_volume").fill_volumes(apps, None)
    import_module("errors.migrations.0005_weekly_rollups").fill_weeks(apps, None)

    assert snapshot() == written
