"""Reads of the error history pages; every count comes from the rollups and volumes.

Grouping raw occurrences would cost more with every one recorded (there may be
millions); rollup rows grow with hours × groups × places, so these queries stay
cheap and each page runs a fixed number of them.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Min, Q, Sum
from django.db.models.functions import Left
from django.utils import timezone

from .models import ErrorGroup, ErrorOccurrence, ErrorPlace, ErrorRollup, ErrorVolume, Grain
from .services import day_of, hour_of, week_of

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
# The rollup columns an operator can filter on, in the order the form shows them.
PLACE_FIELDS = ("job_name", "node_id", "region", "version")
# Long texts are cut in the database, so one huge message cannot bloat a page.
PREVIEW_CHARS = 300


@dataclass(frozen=True)
class Window:
    """A time range as whole buckets, from the bucket `span` ago to the current one.

    Up to a day it is read in hours; longer ranges in days, from the daily
    rollups, so a month costs about as much to show as a day.
    """

    key: str
    start: datetime
    end: datetime
    grain: str = ErrorRollup.Grain.HOUR

    @classmethod
    def parse(cls, key, *, now=None):
        key = key if key in RANGES else DEFAULT_RANGE
        now = now or timezone.now()
        if RANGES[key] > timedelta(days=1):
            return cls(key, day_of(now - RANGES[key]), day_of(now), ErrorRollup.Grain.DAY)
        return cls(key, hour_of(now - RANGES[key]), hour_of(now))

    @property
    def grain_name(self):
        return ErrorRollup.Grain(self.grain).label

    @property
    def step(self):
        return timedelta(days=1) if self.grain == ErrorRollup.Grain.DAY else timedelta(hours=1)

    def buckets(self):
        count = int((self.end - self.start) / self.step)
        return [self.start + n * self.step for n in range(count + 1)]


@dataclass(frozen=True)
class HistoryFilter:
    """What /errors/ shows: a window, narrowed to a job, node, region or version."""

    window: Window
    job_name: str = ""
    node_id: str = ""
    region: str = ""
    version: str = ""

    @classmethod
    def from_query(cls, query, *, now=None):
        # PostgreSQL refuses NUL in a string: such a value could never match anyway.
        places = {
            name: query.get(name, "").replace("\x00", "").strip()[:200] for name in PLACE_FIELDS
        }
        return cls(Window.parse(query.get("range", ""), now=now), **places)

    def places(self):
        return {name: getattr(self, name) for name in PLACE_FIELDS if getattr(self, name)}

    def rollups(self):
        return rollups_in(self.window).filter(**self.places())

    def volumes(self):
        return rollups_in(self.window, ErrorVolume).filter(**self.places())


@dataclass(frozen=True)
class Share:
    """One node, region or version's part of a group's failures in a window."""

    value: str
    count: int
    percent: float
    first_bucket: datetime
    last_bucket: datetime


def rollups_in(window, model=ErrorRollup):
    """The window's rows of a bucketed count (rollups, or volumes), at its grain."""
    return model.objects.filter(
        grain=window.grain, bucket__gte=window.start, bucket__lte=window.end
    )


def filter_options(window, *, limit=200):
    """The values each filter can take: the places errors came from within the window.

    Read from the small table of places, never from the rollups.
    """
    options = {name: [] for name in PLACE_FIELDS}
    rows = (
        ErrorPlace.objects.filter(last_seen__gte=window.start, field__in=PLACE_FIELDS)
        .order_by("field", "value")
        .values_list("field", "value")
    )
    for field, value in rows:
        if len(options[field]) < limit:
            options[field].append(value)
    return options


def ranking_rollups(flt):
    """The rollups that add up to each group's count in the filter's window, fewest rows.

    A window read in days takes its whole weeks from the weekly rollups and
    only the days before and after them from the daily ones: a month is about
    half the rows, and ranking every group means reading all of them.
    """
    window = flt.window
    if window.grain != Grain.DAY:
        return flt.rollups()
    end = window.end + timedelta(days=1)  # the last day bucket is part of the window
    weeks_from = week_of(window.start + timedelta(days=6))  # the first whole week
    weeks_to = week_of(end)  # where the last whole week ends
    if weeks_to <= weeks_from:
        return flt.rollups()
    return ErrorRollup.objects.filter(
        Q(grain=Grain.WEEK, bucket__gte=weeks_from, bucket__lt=weeks_to)
        | Q(grain=Grain.DAY, bucket__gte=window.start, bucket__lt=weeks_from)
        | Q(grain=Grain.DAY, bucket__gte=weeks_to, bucket__lt=end),
        **flt.places(),
    )


def top_groups(flt, *, limit):
    """(group, count in the window) for the groups that failed most, most first."""
    ranked = list(
        ranking_rollups(flt)
        .values("group_id")
        .annotate(n=Sum("count"))
        .order_by("-n", "group_id")
        .values_list("group_id", "n")[:limit]
    )
    groups = ErrorGroup.objects.defer("last_message").in_bulk([pk for pk, _ in ranked])
    return [(groups[pk], n) for pk, n in ranked if pk in groups]


def totals_by_bucket(flt):
    """{bucket: count} over every group the filter matches, from the small volume table."""
    rows = flt.volumes().values("bucket").annotate(n=Sum("count")).values_list("bucket", "n")
    return dict(rows.order_by())


def counts_by_group_and_bucket(flt, group_ids):
    """{(group id, bucket): count} for the given groups."""
    rows = (
        flt.rollups()
        .filter(group_id__in=group_ids)
        .values("group_id", "bucket")
        .annotate(n=Sum("count"))
        .values_list("group_id", "bucket", "n")
    )
    return {(pk, bucket): n for pk, bucket, n in rows.order_by()}


def group_counts_by(group, window, field):
    """{(bucket, value of `field`): count} for one group: its timeline split by place."""
    rows = (
        rollups_in(window)
        .filter(group=group)
        .values("bucket", field)
        .annotate(n=Sum("count"))
        .values_list("bucket", field, "n")
    )
    return {(bucket, value): n for bucket, value, n in rows.order_by()}


def group_breakdown(group, window, field, *, total, limit=20):
    """The group's failures per node, region or version in the window, largest first."""
    rows = (
        rollups_in(window)
        .filter(group=group)
        .values(field)
        .annotate(n=Sum("count"), first=Min("bucket"), last=Max("bucket"))
        .order_by("-n", field)
        .values_list(field, "n", "first", "last")[:limit]
    )
    return [
        Share(value, n, n / total * 100 if total else 0.0, first, last)
        for value, n, first, last in rows
    ]


def recent_occurrences(group, *, limit=50):
    """The latest occurrences, read along the (group, occurred_at) index."""
    return list(
        ErrorOccurrence.objects.filter(group=group)
        .defer("message")
        .annotate(message_head=Left("message", PREVIEW_CHARS))
        .order_by("-occurred_at")[:limit]
    )
