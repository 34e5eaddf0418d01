"""Medians of repeated measurements, and the rows of the report they become."""

import statistics
import time
from dataclasses import dataclass


@dataclass
class Row:
    """One line of the table. `higher_is_better` decides how the goal reads the ratio."""

    figure: str
    velo: float
    reference: float
    unit: str
    goal_ratio: float | None
    higher_is_better: bool
    goal_text: str
    extra_ok: bool = True  # an absolute goal besides the ratio (e.g. ≤ 100 ms)
    note: str = ""

    @property
    def ratio(self):
        return self.velo / self.reference if self.reference else float("inf")

    @property
    def passed(self):
        if self.goal_ratio is None:
            return None
        ok = (
            self.ratio >= self.goal_ratio
            if self.higher_is_better
            else self.ratio <= self.goal_ratio
        )
        return ok and self.extra_ok


def median(values):
    return statistics.median(values)


def timed(func, *args, **kwargs):
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - started, result


def median_time(func, repeats, warmup=1):
    """Median seconds of `repeats` calls after `warmup` untimed ones; also all the times."""
    for _ in range(warmup):
        func()
    times = [timed(func)[0] for _ in range(repeats)]
    return median(times), times
