"""Error occurrences over 30 days, and the rollups, volumes and group totals that match them.

The shape: occurrences fall on groups with a Zipf skew; a group that fails
n times is seen in about n/20 distinct hours (errors come in bursts: at least
one hour, at most all 720) and on 1 + n/5,000 of the 8 nodes; versions follow
the deploys (three over the month). Rows are written hour by hour, so ids grow
with time as they do in production, one failure each (count 1: a storm's
batch would write one row for many, and the pages read the rollups either
way). The rollups are then built from the occurrences with one GROUP BY of
their counts, so they agree with them exactly.
"""

import random
from collections import defaultdict
from datetime import timedelta

from errors.models import ErrorGroup
from errors.services import hour_of

from .data import DAYS, NODES, VERSIONS, zipf_weights
from .pgcopy import bulk_load, copy_lines, escape, execute, scalar, vacuum_analyze

HOURS = DAYS * 24
PER_ACTIVE_HOUR = 20
PER_EXTRA_NODE = 5000
COLUMNS = [
    "group_id",
    "occurred_at",
    "job_name",
    "message",
    "node_id",
    "node_name",
    "region",
    "version",
    "count",
]


def _allocate(total, n):
    """Counts per rank summing to `total`, Zipf-shaped."""
    weights = zipf_weights(n)
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for rank in range(total - sum(counts)):
        counts[rank % n] += 1
    return counts


def load(total, *, seed, now, log):
    """Replace every occurrence and rollup with `total` generated ones; return the rollup count."""
    rng = random.Random(seed)
    execute(
        "TRUNCATE errors_erroroccurrence, errors_errorrollup, errors_errorvolume, errors_errortotal"
    )
    groups = list(ErrorGroup.objects.order_by("pk").values_list("pk", "job_name", "last_message"))
    rng.shuffle(groups)  # rank is not id order
    first_hour = hour_of(now) - timedelta(hours=HOURS - 1)
    hour_text = [(first_hour + timedelta(hours=h)).strftime("%Y-%m-%d %H:") for h in range(HOURS)]
    minute_second = [f"{s // 60:02d}:{s % 60:02d}+00" for s in range(3600)]
    # hour -> [(group row, occurrences in that hour, its nodes)]
    plan = defaultdict(list)
    for (pk, job_name, message), n in zip(groups, _allocate(total, len(groups)), strict=True):
        if not n:
            continue
        hours = rng.sample(range(HOURS), min(HOURS, max(1, n // PER_ACTIVE_HOUR)))
        nodes = rng.sample(NODES, min(len(NODES), 1 + n // PER_EXTRA_NODE))
        if n >= 10 * len(hours):  # many per hour: an even split, the remainder spread
            share = [n // len(hours) + (i < n % len(hours)) for i in range(len(hours))]
        else:
            share = [0] * len(hours)
            for _ in range(n):
                share[rng.randrange(len(hours))] += 1
        row = (pk, f"{job_name}\t{escape(message)}")
        for hour, count in zip(hours, share, strict=True):
            if count:
                plan[hour].append((row, count, nodes))

    def lines():
        randrange = rng.randrange
        for hour in range(HOURS):
            version = VERSIONS[min(2, hour * 3 // HOURS)]
            prefix = hour_text[hour]
            for (pk, job_and_message), count, nodes in plan[hour]:
                for _ in range(count):
                    node_id, node_name, region = nodes[randrange(len(nodes))]
                    yield (
                        f"{pk}\t{prefix}{minute_second[randrange(3600)]}\t{job_and_message}\t"
                        f"{node_id}\t{node_name}\t{region}\t{version}\t1\n"
                    )

    if total >= 100_000:
        with bulk_load("errors_erroroccurrence", log):
            copy_lines("errors_erroroccurrence", COLUMNS, lines())
    else:
        copy_lines("errors_erroroccurrence", COLUMNS, lines())
    _derive_totals()
    vacuum_analyze(
        "errors_erroroccurrence", "errors_errorrollup", "errors_errorvolume", "errors_errorgroup"
    )
    return scalar("SELECT count(*) FROM errors_errorrollup")


def _derive_totals():
    """Rollups (hourly, daily, weekly), volumes, places, group counts and per-job totals,
    computed from the occurrences just loaded, as the write path would have kept them."""
    for grain, unit in (("h", "hour"), ("d", "day"), ("w", "week")):
        execute(
            f"""
            INSERT INTO errors_errorrollup
                (grain, bucket, group_id, job_name, node_id, region, version, count)
            SELECT '{grain}', date_trunc('{unit}', occurred_at), group_id, job_name, node_id,
                   region, version, sum(count)
            FROM errors_erroroccurrence
            GROUP BY 2, 3, 4, 5, 6, 7
            ORDER BY 2, 3
            """
        )
        if grain == "w":
            continue  # volumes are kept by hour and day only
        execute(
            f"""
            INSERT INTO errors_errorvolume
                (grain, bucket, job_name, node_id, region, version, count)
            SELECT '{grain}', date_trunc('{unit}', occurred_at), job_name, node_id, region,
                   version, sum(count)
            FROM errors_erroroccurrence
            GROUP BY 2, 3, 4, 5, 6
            """
        )
    execute("TRUNCATE errors_errorplace")
    for field in ("job_name", "node_id", "region", "version"):
        execute(
            f"""
            INSERT INTO errors_errorplace (field, value, last_seen)
            SELECT '{field}', {field}, max(bucket) FROM errors_errorrollup
            WHERE grain = 'd' AND {field} <> '' GROUP BY {field}
            """
        )
    execute(
        """
        UPDATE errors_errorgroup g SET count = s.n, first_seen = s.first, last_seen = s.last,
               last_message = g.last_message
        FROM (SELECT group_id, sum(count) AS n, min(occurred_at) AS first,
                     max(occurred_at) AS last
              FROM errors_erroroccurrence GROUP BY group_id) s
        WHERE g.id = s.group_id
        """
    )
    execute(
        """
        INSERT INTO errors_errortotal (job_name, occurrences)
        SELECT job_name, sum(count) FROM errors_erroroccurrence GROUP BY job_name
        """
    )
