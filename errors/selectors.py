"""Reads of the error history pages; every count comes from the rollups and volumes.

Grouping raw occurrences would cost more with every one recorded (there may be
millions); rollup rows grow with hours × groups × places, so these queries stay
cheap and each page runs a fixed number of them.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Min, Q, Sum
from django.db.models.functions import Left
from django.utils import timezone

from .models import ErrorGroup, ErrorOccurrence, ErrorPlace, ErrorRollup, ErrorVolume, Grain


@dataclass(frozen=True)
class Range:
    """A choice of the range menu: how far back, the rows it reads, the width of its buckets."""

    span: timedelta
    grain: str
    step: timedelta


MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
RANGES = {
    # "Is it still happening?" is answered per minute; six hours in 5-minute buckets, summed
    # from the minute rows (72 points, not 360).
    "1h": Range(HOUR, Grain.MINUTE, MINUTE),
    "6h": Range(6 * HOUR, Grain.MINUTE, 5 * MINUTE),
    "24h": Range(DAY, Grain.HOUR, HOUR),
    "7d": Range(7 * DAY, Grain.DAY, DAY),
    "30d": Range(30 * DAY, Grain.DAY, DAY),
}
DEFAULT_RANGE = "24h"
GRAIN_LENGTH = {Grain.MINUTE: MINUTE, Grain.HOUR: HOUR, Grain.DAY: DAY, Grain.WEEK: 7 * DAY}
# Ranking a window of fine rows reads its whole coarse buckets from the coarser rows.
COARSER = {Grain.MINUTE: Grain.HOUR, Grain.DAY: Grain.WEEK}
# The rollup columns an operator can filter on, in the order the form shows them.
PLACE_FIELDS = ("job_name", "node_id", "region", "version")
# Long texts are cut in the database, so one huge message cannot bloat a page.
PREVIEW_CHARS = 300
# A Monday at midnight UTC: buckets of every width (5 minutes, a week) are counted from it.
EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


def floor_to(moment, step):
    """The start of the bucket of width `step` that holds `moment` (UTC-aligned)."""
    return moment - (moment - EPOCH) % step


@dataclass(frozen=True)
class Window:
    """A time range as whole buckets, from `start` to the current one, which starts at `end`.

    The last hour is 60 minute buckets and six hours 72 buckets of 5 minutes;
    a day is read in hours, from the hour a day ago; longer ranges in days,
    from the daily rollups, so a month costs about as much to show as a day.
    """

    key: str
    start: datetime
    end: datetime
    grain: str = Grain.HOUR
    step: timedelta = HOUR

    @classmethod
    def parse(cls, key, *, now=None):
        key = key if key in RANGES else DEFAULT_RANGE
        now = now or timezone.now()
        chosen = RANGES[key]
        end = floor_to(now, chosen.step)
        if chosen.grain == Grain.MINUTE:  # exactly span / step buckets, the current one last
            start = end - chosen.span + chosen.step
        else:
            start = floor_to(now - chosen.span, chosen.step)
        return cls(key, start, end, chosen.grain, chosen.step)

    @property
    def stop(self):
        """Where the window ends: the end of its current bucket."""
        return self.end + self.step

    @property
    def grain_name(self):
        if self.step != GRAIN_LENGTH[self.grain]:
            return f"{self.step.seconds // 60} minutes"
        return Grain(self.grain).label

    def buckets(self):
        count = int((self.end - self.start) / self.step)
        return [self.start + n * self.step for n in range(count + 1)]

    def bucket_of(self, moment):
        """The window's bucket that holds a stored row's bucket (5 minutes hold 5 minute rows)."""
        return floor_to(moment, self.step)


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
        grain=window.grain, bucket__gte=window.start, bucket__lt=window.stop
    )


def folded(window, rows, *, at):
    """Rows of (key…, count) summed per key, the stored bucket at `key[at]` replaced by the
    window's bucket that holds it (a 5-minute bucket holds five minute rows)."""
    totals = Counter()
    for *key, n in rows:
        key[at] = window.bucket_of(key[at])
        totals[tuple(key) if len(key) > 1 else key[0]] += n
    return dict(totals)


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

    A window of minutes takes its whole hours from the hourly rollups, a window
    of days its whole weeks from the weekly ones, and only the edges from its
    own grain: six hours are about a tenth of the rows, a month about half, and
    ranking every group means reading all of them.
    """
    window = flt.window
    if window.grain not in COARSER:
        return flt.rollups()
    coarse = COARSER[window.grain]
    length = GRAIN_LENGTH[coarse]
    whole_from = floor_to(window.start + length - GRAIN_LENGTH[window.grain], length)
    whole_to = floor_to(window.stop, length)  # where the last whole coarse bucket ends
    if whole_to <= whole_from:
        return flt.rollups()
    return ErrorRollup.objects.filter(
        Q(grain=coarse, bucket__gte=whole_from, bucket__lt=whole_to)
        | Q(grain=window.grain, bucket__gte=window.start, bucket__lt=whole_from)
        | Q(grain=window.grain, bucket__gte=whole_to, bucket__lt=window.stop),
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
    return folded(flt.window, rows.order_by(), at=0)


def counts_by_group_and_bucket(flt, group_ids):
    """{(group id, bucket): count} for the given groups."""
    rows = (
        flt.rollups()
        .filter(group_id__in=group_ids)
        .values("group_id", "bucket")
        .annotate(n=Sum("count"))
        .values_list("group_id", "bucket", "n")
    )
    return folded(flt.window, rows.order_by(), at=1)


def group_counts_by(group, window, field):
    """{(bucket, value of `field`): count} for one group: its timeline split by place."""
    rows = (
        rollups_in(window)
        .filter(group=group)
        .values("bucket", field)
        .annotate(n=Sum("count"))
        .values_list("bucket", field, "n")
    )
    return folded(window, rows.order_by(), at=0)


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
