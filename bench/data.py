"""Realistic Velo data, generated fast: jobs, error groups, DLQ entries and consistent counters.

Everything comes from a seeded random.Random, so two runs load the same rows.
20 pipeline jobs share 10,000 error groups (500 each); a job's entries fall
into its groups with a Zipf-like skew (a few errors dominate, most are rare),
carry ~1 KiB payloads, and are spread over the last 30 days in id order.
"""

import hashlib
import json
import random
from collections import Counter
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from dlq.models import Batch, FailureStrategy, Job, JobCounters
from errors.fingerprint import GROUPING_VERSION
from errors.models import ErrorGroup

from .pgcopy import bulk_load, copy_lines, escape, execute

JOBS = 20
GROUPS = 10_000
ENTRIES_PER_BATCH = 1000
DAYS = 30
NODES = [
    (f"worker-{n}", f"velo-worker-{n}", "eu-west-1" if n < 4 else "us-east-1") for n in range(8)
]
VERSIONS = ["1.4.2", "1.5.0", "1.5.1"]
ERROR_KINDS = [
    ("RecordInvalid", "Invalid value in '{col}' field: expected a number, got '<str>'"),
    ("RecordInvalid", "Missing required column '{col}' in record <num>"),
    ("ValidationError", "Field '{col}': '<str>' is not of type 'integer'"),
    ("LookupError", "No account <num> for '{col}' in the ledger"),
    ("TimeoutError", "Upstream '{col}' did not answer within <num> ms"),
]
TRACEBACK = escape(
    "Traceback (most recent call last):\n"
    '  File "/srv/velo/dlq/processors/runner.py", line 88, in run_records\n'
    "    processor.func(record, ctx)\n"
    '  File "/srv/pipelines/transform.py", line 214, in process\n'
    "    value = parse_amount(record[column], currency=record.get('currency'))\n"
    '  File "/srv/pipelines/parsing.py", line 57, in parse_amount\n'
    "    raise RecordInvalid(f\"Invalid value in '{column}' field\")\n"
    "RecordInvalid: the record could not be processed\n"
)


def job_names():
    return [f"pipeline-{n:02d}" for n in range(1, JOBS + 1)]


def create_jobs(names, **options):
    jobs = []
    for name in names:
        job, _ = Job.objects.update_or_create(
            name=name,
            defaults={
                "processor": "demo.trades",
                "failure_strategy": FailureStrategy.SEND_TO_DLQ,
                **options,
            },
        )
        JobCounters.objects.get_or_create(job=job)
        jobs.append(job)
    return jobs


def drop_job(name):
    """Remove a job of one figure, with its entries and its groups, so later figures see 20 jobs."""
    Job.objects.filter(name=name).delete()
    ErrorGroup.objects.filter(job_name=name).delete()


def group_column(group_number):
    return f"col_{group_number:05d}"


def create_groups(jobs, per_job, now):
    """per_job groups for each job, numbered globally; return {job name: [group ids]}."""
    lines, number = [], 0
    stamp = now.isoformat()
    for job in jobs:
        for _ in range(per_job):
            error_type, template = ERROR_KINDS[number % len(ERROR_KINDS)]
            template = template.format(col=group_column(number))
            fingerprint = hashlib.sha256(f"bench {job.name} {number}".encode()).hexdigest()
            message = escape(template.replace("<str>", "abc").replace("<num>", "42"))
            lines.append(
                f"{fingerprint}\t{job.name}\t{job.pk}\t{error_type}\t{escape(template)}\t{message}\t0"
                f"\t{stamp}\t{stamp}\tunresolved\t{GROUPING_VERSION}\n"
            )
            number += 1
    copy_lines(
        "errors_errorgroup",
        [
            "fingerprint",
            "job_name",
            "job_id",
            "error_type",
            "template",
            "last_message",
            "count",
            "first_seen",
            "last_seen",
            "status",
            "grouping_version",
        ],
        lines,
    )
    # Every group's own key, as the engine stores it beside a new group.
    execute(
        "INSERT INTO errors_groupkey"
        " (fingerprint, group_id, grouping_version, template, created_at)"
        " SELECT fingerprint, id, grouping_version, template, first_seen FROM errors_errorgroup g"
        " WHERE NOT EXISTS (SELECT 1 FROM errors_groupkey k WHERE k.group_id = g.id)"
    )
    by_job = {}
    for pk, job_name in ErrorGroup.objects.order_by("pk").values_list("pk", "job_name"):
        by_job.setdefault(job_name, []).append(pk)
    return by_job


def zipf_weights(n, s=1.0):
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def payload_bodies(rng, count=50):
    """~1 KiB JSON objects without their opening brace: a record id goes in front."""
    bodies = []
    for n in range(count):
        record = {
            "symbol": rng.choice(["ACME", "GLOBX", "INITECH", "UMBRL", "STARK"]),
            "price": round(rng.uniform(1, 500), 2),
            "qty": rng.randint(1, 1000),
            "account": f"ACC-{rng.randint(10000, 99999)}",
            "venue": rng.choice(["XLON", "XNYS", "XPAR", "XETR"]),
            "tags": [f"tag-{rng.randint(0, 99)}" for _ in range(8)],
            "attributes": {f"attr_{k}": f"value-{n}-{k}-{'x' * 40}" for k in range(12)},
        }
        bodies.append(json.dumps(record, separators=(", ", ": "))[1:])
    return bodies


def _message(template, rng):
    return template.replace("<str>", f"x{rng.randrange(1000)}").replace(
        "<num>", str(rng.randrange(100000))
    )


ENTRY_COLUMNS = [
    "job_id",
    "batch_id",
    "index",
    "payload",
    "error_message",
    "error_type",
    "traceback",
    "error_group_id",
    "status",
    "attempts",
    "node_id",
    "node_name",
    "region",
    "version",
    "created_at",
    "last_attempt_at",
    "resolved_at",
]


def load_entries(jobs, groups_by_job, count, *, seed, now, log, statuses=None, valid=False):
    """COPY `count` DLQ entries of `jobs` (and their batches); return entries per group id.

    `statuses` is [(status, weight)]; by default most entries are pending, some
    resolved or discarded, as a DLQ that operators work on looks. `valid`
    payloads pass demo.trades (what a requeue after a fix sees).
    """
    rng = random.Random(seed)
    statuses = statuses or [("pending", 85), ("resolved", 12), ("discarded", 3)]
    status_names = [s for s, _ in statuses]
    status_cum = _cumulative([w for _, w in statuses])
    bodies = payload_bodies(rng)
    if not valid:  # a record the processor refuses: its price is text
        bodies = [b.replace('"price": ', '"price": "n/a", "was": ', 1) for b in bodies]
    groups = {job.pk: groups_by_job[job.name] for job in jobs}
    templates = dict(
        ErrorGroup.objects.filter(pk__in=[g for ids in groups.values() for g in ids]).values_list(
            "pk", "template"
        )
    )
    types = dict(ErrorGroup.objects.filter(pk__in=templates).values_list("pk", "error_type"))
    cum = {job_id: _cumulative(zipf_weights(len(ids))) for job_id, ids in groups.items()}
    n_batches = -(-count // ENTRIES_PER_BATCH)
    start = now - timedelta(days=DAYS)
    batch_jobs = [jobs[i % len(jobs)] for i in range(n_batches)]
    created = [start + (now - start) * (i + 1) / (n_batches + 1) for i in range(n_batches)]
    batches = Batch.objects.bulk_create(
        Batch(
            job=job,
            records=[],
            record_count=ENTRIES_PER_BATCH * 100,
            status=Batch.Status.PARTIAL,
            created_at=at,
            finished_at=at,
            attempts=1,
        )
        for job, at in zip(batch_jobs, created, strict=True)
    )
    per_group = Counter()

    def lines():
        for b, batch in enumerate(batches):
            job_id, stamp = batch.job_id, created[b].isoformat()
            resolved = (created[b] + timedelta(hours=1)).isoformat()
            node_id, node_name, region = NODES[b % len(NODES)]
            version = VERSIONS[min(2, b * 3 // n_batches)]
            for index in range(min(ENTRIES_PER_BATCH, count - b * ENTRIES_PER_BATCH)):
                group = groups[job_id][_pick(cum[job_id], rng.random())]
                per_group[group] += 1
                status = status_names[_pick(status_cum, rng.random())]
                payload = f'{{"id": {b * ENTRIES_PER_BATCH + index}, {bodies[index % len(bodies)]}'
                yield (
                    f"{job_id}\t{batch.pk}\t{index}\t{payload}\t"
                    f"{escape(_message(templates[group], rng))}\t{types[group]}\t{TRACEBACK}\t"
                    f"{group}\t{status}\t1\t{node_id}\t{node_name}\t{region}\t{version}\t"
                    f"{stamp}\t{stamp}\t{resolved if status == 'resolved' else chr(92) + 'N'}\n"
                )

    if count >= 100_000:
        with bulk_load("dlq_dlqentry", log):
            copy_lines("dlq_dlqentry", ENTRY_COLUMNS, lines())
    else:
        copy_lines("dlq_dlqentry", ENTRY_COLUMNS, lines())
        execute("ANALYZE dlq_dlqentry")
    return per_group


def _cumulative(weights):
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [c / total for c in out]


def _pick(cumulative, r):
    """Index of the first cumulative weight above r (binary search)."""
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    return lo


def sync_counters():
    """JobCounters as the engine would have left them after storing the entries that exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE dlq_jobcounters c SET
              dlq_added = s.added, dlq_pending = s.pending, dlq_resolved = s.resolved,
              dlq_requeued = s.resolved, dlq_discarded = s.discarded,
              records_failed = s.added, records_processed = s.added * 100,
              batches_partial = s.batches, batches_succeeded = s.batches * 9,
              last_entry_at = s.last
            FROM (
              SELECT job_id, count(*) AS added,
                count(*) FILTER (WHERE status = 'pending') AS pending,
                count(*) FILTER (WHERE status = 'resolved') AS resolved,
                count(*) FILTER (WHERE status = 'discarded') AS discarded,
                count(DISTINCT batch_id) AS batches, max(created_at) AS last
              FROM dlq_dlqentry GROUP BY job_id
            ) s
            WHERE c.job_id = s.job_id
            """
        )
        # And each group's backlog, as dlq.backlog keeps it.
        cursor.execute(
            """
            UPDATE errors_errorgroup g SET dlq_pending = (
              SELECT count(*) FROM dlq_dlqentry e
              WHERE e.error_group_id = g.id AND e.status IN ('pending', 'requeued')
            )
            """
        )


def now():
    return timezone.now()
