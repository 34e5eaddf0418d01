"""What a requeue acts on and how: checked once here, for every door (admin, API, shell).

A scope is explicit entry ids, or a filter (job, error group, batch) cut at an
id, so entries that fail after the operator looked are never swept in. Only
pending entries are ever requeued; the scope says which of them.
"""

import math
from dataclasses import dataclass, replace

from django.db.models import Max, Subquery

from common.ids import parse_id
from errors.models import ErrorGroup

from ..models import Batch, DLQEntry, Job

# What a filter may name, as the API body, a run and its audit row spell it.
FILTER_KEYS = ("job", "error_group", "batch")
# A selection bigger than this is a filter's job.
MAX_IDS = 10_000
# Ids sent to the database at once when walking an id list.
ID_SLICE = 1000
DEFAULT_CANARY_MAX_FAILURE_RATIO = 0.5
# A rate limit's range, in entries per second. Below 0.1/s (one entry every ten
# seconds) a run over a few thousand entries takes days: that is not a requeue.
# Above 100,000/s no worker comes near it (a run does ~6,000/s): a typo, not a limit.
MIN_RATE_LIMIT = 0.1
MAX_RATE_LIMIT = 100_000
# The run's canary_size column (a PostgreSQL integer) holds no more; no selection is bigger.
MAX_CANARY_SIZE = 2**31 - 1


class InvalidRequeue(ValueError):
    """A requeue that cannot start, with what is wrong (and the input at fault, when one is)."""

    def __init__(self, message, *, field=None, value=None):
        super().__init__(message)
        self.field, self.value = field, value


class TooManyIds(InvalidRequeue):
    def __init__(self, given):
        super().__init__(f"at most {MAX_IDS} ids per request; requeue more with a filter")
        self.given = given


class UnknownTarget(InvalidRequeue):
    """A filter naming a job, error group or batch that does not exist."""

    WORDS = {"job": "job named", "error_group": "error group", "batch": "batch"}

    def __init__(self, key, value):
        super().__init__(f"no {self.WORDS[key]} {value!r}")
        self.key, self.value = key, value


def newest_entry_id():
    """Where a filter is cut: entries stored after this moment are not part of it."""
    return DLQEntry.objects.aggregate(newest=Max("pk"))["newest"] or 0


@dataclass(frozen=True)
class RequeueScope:
    """The pending entries a requeue reaches: among `entry_ids`, or matching the filter up to
    `max_id` (None: not cut yet; `cut()` cuts it at the newest entry)."""

    entry_ids: tuple[int, ...] | None = None
    job: str | None = None
    error_group: int | None = None
    batch: int | None = None
    max_id: int | None = None

    @classmethod
    def of_ids(cls, ids, *, strings=True):
        """Explicit entries, in any order, repeats ignored: ints, or digit strings too unless
        `strings` is False (a JSON body must send numbers)."""
        ids = list(ids)
        if len(ids) > MAX_IDS:
            raise TooManyIds(len(ids))
        if not ids:
            raise InvalidRequeue("ids must be a non-empty list of DLQ entry ids", field="ids")
        parsed = set()
        for pk in ids:
            if (number := parse_id(pk, strings=strings)) is None:
                raise InvalidRequeue("ids must be positive integers", field="id", value=pk)
            parsed.add(number)
        return cls(entry_ids=tuple(sorted(parsed)))

    @classmethod
    def matching(cls, *, job=None, error_group=None, batch=None, max_id=None, strings=True):
        """A filter of the keys given (None is not given); at least one is needed. Ids are
        ints, or digit strings too unless `strings` is False."""
        given = {"job": job, "error_group": error_group, "batch": batch}
        given = {key: value for key, value in given.items() if value is not None}
        if not given:
            raise InvalidRequeue("name the entries: ids, or a filter (job, error_group, batch)")
        if "job" in given and not (isinstance(given["job"], str) and given["job"]):
            raise InvalidRequeue("job must be a job name", field="job", value=given["job"])
        for key in ("error_group", "batch"):
            if key in given:
                value, given[key] = given[key], parse_id(given[key], strings=strings)
                if given[key] is None:
                    raise InvalidRequeue(
                        f"{key} must be a positive integer id", field=key, value=value
                    )
        if max_id not in (None, 0) and parse_id(max_id, strings=False) is None:
            raise InvalidRequeue("max_id must be an entry id, or 0 for an empty DLQ")
        return cls(**given, max_id=max_id)

    @classmethod
    def of_run(cls, run):
        if run.entry_ids is not None:
            return cls(entry_ids=tuple(run.entry_ids))
        return cls(**(run.filters or {}), max_id=run.max_id)

    @property
    def filters(self):
        """The filter as a dict of the keys given ({} for ids)."""
        values = {"job": self.job, "error_group": self.error_group, "batch": self.batch}
        return {key: value for key, value in values.items() if value is not None}

    def cut(self):
        """A filter cut at the newest entry that exists now; ids and cut filters as they are."""
        if self.entry_ids is not None or self.max_id is not None:
            return self
        return replace(self, max_id=newest_entry_id())

    def check_targets_exist(self):
        """UnknownTarget for a filter on a job, group or batch there is none of."""
        for key, model, lookup in (
            ("job", Job, "name"),
            ("error_group", ErrorGroup, "pk"),
            ("batch", Batch, "pk"),
        ):
            value = getattr(self, key)
            if value is not None and not model.objects.filter(**{lookup: value}).exists():
                raise UnknownTarget(key, value)
        return self

    def entries(self, after=0):
        """The pending entries of a filter past id `after` (of ids, those still to check)."""
        return self.narrow(DLQEntry.objects.filter(status=DLQEntry.Status.PENDING, pk__gt=after))

    def narrow(self, entries):
        """`entries` (a DLQEntry queryset) cut to the filter's job, error group, batch and
        newest id; an id list is the caller's to apply (in slices)."""
        if self.job is not None:
            # The job's id, not a join on its name: the walk then runs along
            # (job, status, id) in id order.
            job_id = Job.objects.filter(name=self.job).values("pk")[:1]
            entries = entries.filter(job_id=Subquery(job_id))
        if self.error_group is not None:
            entries = entries.filter(error_group_id=self.error_group)
        if self.batch is not None:
            entries = entries.filter(batch_id=self.batch)
        if self.max_id is not None:
            entries = entries.filter(pk__lte=self.max_id)
        return entries

    def next_ids(self, size, after=0):
        """The next `size` pending ids past `after`, in id order.

        An id list is walked in slices, never sent whole, so a run over many
        thousands of ids stays within a database's limit on query parameters.
        """
        entries = self.entries(after)
        if self.entry_ids is None:
            return list(entries.order_by("pk").values_list("pk", flat=True)[:size])
        ids = []
        remaining = [pk for pk in self.entry_ids if pk > after]
        for start in range(0, len(remaining), ID_SLICE):
            window = remaining[start : start + ID_SLICE]
            ids += entries.filter(pk__in=window).order_by("pk").values_list("pk", flat=True)
            if len(ids) >= size:
                break
        return ids[:size]

    def count(self):
        """How many pending entries the scope reaches now."""
        if self.entry_ids is None:
            return self.entries().count()
        return sum(
            self.entries().filter(pk__in=self.entry_ids[i : i + ID_SLICE]).count()
            for i in range(0, len(self.entry_ids), ID_SLICE)
        )

    def describe(self, shown_ids=10):
        """In words, for the audit trail and a run's page."""
        if self.entry_ids is not None:
            ids = ", ".join(str(pk) for pk in self.entry_ids[:shown_ids])
            more = len(self.entry_ids) - shown_ids
            return f"pending entries among ids {ids}" + (f" and {more} more" if more > 0 else "")
        words = ", ".join(f"{key} = {value}" for key, value in self.filters.items())
        cut = f", id ≤ {self.max_id}" if self.max_id is not None else ""
        return f"pending entries where {words}{cut}"


@dataclass(frozen=True)
class RequeueOptions:
    """How a run goes: a dry run only counts; a rate limit (entries/s) slows it; a canary
    requeues `canary_size` entries first and stops the run when more than
    `canary_max_failure_ratio` of them fail again; a `fix` (dlq.requeue.fix,
    checked when parsed) changes each payload before it is run again."""

    dry_run: bool = False
    rate_limit: float | None = None
    canary_size: int | None = None
    canary_max_failure_ratio: float | None = None
    fix: object = None  # a dlq.requeue.fix.PayloadFix, which imports this module

    def __post_init__(self):
        def refuse(field, message):
            raise InvalidRequeue(message, field=field, value=getattr(self, field))

        if not isinstance(self.dry_run, bool):
            refuse("dry_run", "dry_run must be true or false")
        if self.rate_limit is not None and not (
            _finite(self.rate_limit) and MIN_RATE_LIMIT <= self.rate_limit <= MAX_RATE_LIMIT
        ):
            refuse(
                "rate_limit",
                f"rate_limit must be a number of entries per second from {MIN_RATE_LIMIT} "
                f"to {MAX_RATE_LIMIT:,}",
            )
        if self.canary_size is not None and not (
            parse_id(self.canary_size, strings=False) and self.canary_size <= MAX_CANARY_SIZE
        ):
            refuse(
                "canary_size",
                f"canary_size must be a positive integer of entries, at most {MAX_CANARY_SIZE:,}",
            )
        ratio = self.canary_max_failure_ratio
        if ratio is not None:
            if self.canary_size is None:
                refuse("canary_max_failure_ratio", "canary_max_failure_ratio needs canary_size")
            if not (_finite(ratio) and 0 <= ratio <= 1):
                refuse(
                    "canary_max_failure_ratio", "canary_max_failure_ratio must be between 0 and 1"
                )

    @property
    def canary_ratio(self):
        """The failure ratio a canary stops above (the default when none is given)."""
        if not self.canary_size:
            return None
        if self.canary_max_failure_ratio is None:
            return DEFAULT_CANARY_MAX_FAILURE_RATIO
        return self.canary_max_failure_ratio


def _finite(value):
    """A number (not a boolean), finite as a float: a 400-digit int is not a rate."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
