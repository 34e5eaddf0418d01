"""The order of the run: small data sets and their references first, then the big loads.

Figures 1, 2/7 and 9/9b run on a small database, each with jobs of its own that
are removed afterwards, so /metrics later sees exactly the 20 pipeline jobs. Then
the DLQ grows from 1,000 entries (the /metrics reference) to 1,000,000 (the
/metrics, admin and requeue figures), and the occurrences from 10,000 (the
/errors/ reference) to 10,000,000 (1,000,000 in --quick).
"""

import re

from django.contrib.auth import get_user_model

from errors.models import ErrorGroup

from . import data, occurrences
from .pgcopy import vacuum_analyze

SMALL_ENTRIES = 1_000
BIG_ENTRIES = 1_000_000
SMALL_OCCURRENCES = 10_000
SEARCH_MATCHES = 200


def run(quick, only, log):
    rows, pages = [], []
    repeats = 5 if quick else 9
    now = data.now()
    log("base data: 20 jobs, 10,000 error groups, a superuser")
    jobs = data.create_jobs(data.job_names())
    groups = data.create_groups(jobs, data.GROUPS // data.JOBS, now)
    get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")

    if "grouping" in only:
        from .figures import grouping

        log("figure 8: grouping on LogHub-2k, Velo vs Drain3")
        rows += grouping.run(quick, log)
    if "persist" in only:
        from .figures import persist

        log("figure 1: DLQ persistence")
        rows += persist.run(quick, log)
    if "e2e" in only:
        from .figures import e2e

        log("figures 2 and 7: end to end over HTTP, and worker memory")
        rows += e2e.run(quick, log)
    if "storm" in only:
        from .figures import storm

        log("figures 9 and 9b: failure storms end to end, log volume, storage per entry")
        rows += storm.run(quick, log)
    if "recovery" in only:
        from .figures import recovery

        log("figure 10: recovery after SIGKILL, worker restarted")
        rows += recovery.run(quick, log)
    if "soak" in only:
        from .figures import soak

        log("figure 11: the chaos soak, without faults and with them")
        rows += soak.run(quick, log)

    if not only & {"metrics", "errors", "admin", "requeue"}:
        return rows, pages
    log(f"loading {SMALL_ENTRIES:,} DLQ entries")
    per_group = data.load_entries(jobs, groups, SMALL_ENTRIES, seed=1, now=now, log=log)
    data.sync_counters()
    vacuum_analyze("dlq_dlqentry", "dlq_jobcounters", "dlq_batch")
    if "metrics" in only:
        from .figures import metrics

        log("figure 3: /metrics with the small DLQ")
        small_scrape = metrics.scrape(20)
    if "errors" in only:
        from .figures import errors_page

        log(f"figure 5: /errors/ with {SMALL_OCCURRENCES:,} occurrences")
        small_rollups = occurrences.load(SMALL_OCCURRENCES, seed=2, now=now, log=log)
        small_errors = errors_page.measure(repeats)

    log(f"loading {BIG_ENTRIES - SMALL_ENTRIES:,} more DLQ entries")
    more = data.load_entries(jobs, groups, BIG_ENTRIES - SMALL_ENTRIES, seed=3, now=now, log=log)
    for group, n in more.items():
        per_group[group] = per_group.get(group, 0) + n
    data.sync_counters()
    vacuum_analyze("dlq_jobcounters", "dlq_batch")
    if "metrics" in only:
        log("figure 3: /metrics with the big DLQ")
        rows.append(metrics.row(metrics.scrape(20), small_scrape, BIG_ENTRIES, SMALL_ENTRIES))
    if "admin" in only:
        from .figures import admin

        log("figure 4: DLQ admin lists, Velo vs stock ModelAdmin")
        admin_rows, admin_pages = admin.run(
            per_group, groups, _search_term(per_group), repeats, log
        )
        rows += admin_rows
        pages += admin_pages
    if "requeue" in only:
        from .figures import requeue

        log("figure 6: requeue run")
        rows += requeue.run(quick, log)
    if "errors" in only:
        big = 1_000_000 if quick else 10_000_000
        log(f"figure 5: loading {big:,} occurrences")
        big_rollups = occurrences.load(big, seed=4, now=now, log=log)
        big_errors = errors_page.measure(repeats)
        rows += errors_page.rows(
            big_errors, small_errors, big, SMALL_OCCURRENCES, big_rollups, small_rollups
        )
        pages += [(f"/errors/ {name} at {big:,} occurrences", t) for name, t in big_errors.items()]
    rows.sort(key=lambda row: row.figure)
    return rows, pages


def _search_term(per_group):
    """A word of one group's messages, matching about SEARCH_MATCHES entries."""
    group = min(per_group, key=lambda g: abs(per_group[g] - SEARCH_MATCHES))
    template = ErrorGroup.objects.get(pk=group).template
    return re.search(r"col_\d{5}", template).group()
