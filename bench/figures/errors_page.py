"""Figure 5: /errors/ with 10,000,000 occurrences over 30 days against the same page with 10,000.

Two views: the default (last 24 hours) and the whole month (?range=30d).
Called twice by the plan, small data set first; `rows` pairs the two.
"""

from ..pages import client, page_time
from ..timing import Row

VIEWS = (("default (24h)", "/errors/"), ("30 days", "/errors/?range=30d"))


def measure(repeats):
    c = client()
    return {name: page_time(c, url, repeats)[0] for name, url in VIEWS}


def rows(big, small, big_n, small_n, big_rollups, small_rollups):
    return [
        Row(
            f"5 /errors/ {name}, {big_n:,} vs {small_n:,} occurrences",
            big[name],
            small[name],
            "ms",
            2.0,
            False,
            "<= 2x",
            note=f"{big_rollups:,} rollup rows (hourly, daily, weekly) vs {small_rollups:,}",
        )
        for name, _ in VIEWS
    ]
