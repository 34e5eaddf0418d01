"""Figure 1: DLQ persistence, rows/s, against raw COPY of the same rows into an equivalent table.

Velo: the engine called in-process (`engine.process_batch`) on batches
submitted beforehand, where every record fails under send_to_dlq: the time
covers the processor, grouping, occurrences, rollups, the DLQ rows (each its
own original attempt: no attempt row), counters and the batch's own update,
committed. Reference: the
very rows Velo stored, COPYed (text format, one transaction, committed) into a
table made `LIKE dlq_dlqentry INCLUDING ALL` (same columns, the same
indexes, logged). Runs alternate Velo / COPY, so noise hits both alike.

Velo writes one row per failed record (the entry, which holds its original
attempt until a requeue fails) and one error occurrence per group and message
of the batch, counting its failures (one for this batch: every record fails
alike); the note also gives COPY of all of them into LIKE tables, the ceiling
for the same writes.
"""

import json
import random
import time

from django.db import connection, transaction
from django.utils import timezone

from dlq import engine
from dlq.models import Batch

from .. import data
from ..pgcopy import escape
from ..timing import Row, median

JOB = "bench-persist"
REF_TABLE = "bench_copy_reference"
# The rows Velo writes for a batch's failed records, by table: (table, rows of one batch).
ALL_ROWS = (
    ("dlq_dlqentry", "batch_id = {batch}"),
    ("errors_erroroccurrence", "batch_id = {batch}"),
)
COLUMNS = [c for c in data.ENTRY_COLUMNS if c != "resolved_at"]


def _records(count):
    body = data.payload_bodies(random.Random(1))[0]
    body = body.replace('"price": ', '"price": "n/a", "was": ', 1)  # every record fails
    return [json.loads(f'{{"id": {i}, {body}') for i in range(count)]


def _stored_rows(batch_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT job_id, batch_id, index, payload::text, error_message, error_type, traceback,"
            " error_group_id, status, attempts, node_id, node_name, region, version,"
            " created_at::text, last_attempt_at::text FROM dlq_dlqentry WHERE batch_id = %s",
            [batch_id],
        )
        return cursor.fetchall()


def _copy_reference(rows, fake_batch_id):
    lines = [
        "\t".join(escape(str(v)) for v in (*row[:1], fake_batch_id, *row[2:])) + "\n"
        for row in rows
    ]
    started = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            f"COPY {REF_TABLE} ({', '.join(COLUMNS)}) FROM STDIN"
        ) as copy,
    ):
        copy.write("".join(lines))
    return time.perf_counter() - started


def _copy_all_rows(batch_id):
    """Seconds to COPY every row Velo wrote for the batch into LIKE tables, in one transaction."""
    exported = {}
    with connection.cursor() as cursor:
        pg = cursor.connection.cursor()
        for table, where in ALL_ROWS:
            query = f"SELECT * FROM {table} WHERE {where.format(batch=int(batch_id))}"
            with pg.copy(f"COPY ({query}) TO STDOUT") as copy:
                exported[table] = b"".join(bytes(block) for block in copy)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        pg = cursor.connection.cursor()
        for table, data in exported.items():
            with pg.copy(f"COPY bench_all_{table} FROM STDIN") as copy:
                copy.write(data)
    return time.perf_counter() - started


def _reference_tables(create):
    with connection.cursor() as cursor:
        for table in [REF_TABLE] + [f"bench_all_{t}" for t, _ in ALL_ROWS]:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            if create:
                source = "dlq_dlqentry" if table == REF_TABLE else table.removeprefix("bench_all_")
                cursor.execute(f"CREATE TABLE {table} (LIKE {source} INCLUDING ALL)")


def run(quick, log):
    batches, size = (5, 1000) if quick else (12, 1000)
    (job,) = data.create_jobs([JOB], dlq_max_size=None)
    records = _records(size)
    ids = [
        Batch.objects.create(
            job=job, records=records, record_count=size, next_attempt_at=timezone.now()
        ).pk
        for _ in range(batches + 1)
    ]
    _reference_tables(create=True)
    engine.process_batch(ids[0])  # warm-up: creates the group, the rollup, caches
    velo, ref, all_rows = [], [], []
    for n, batch_id in enumerate(ids[1:], start=1):
        started = time.perf_counter()
        status = engine.process_batch(batch_id)
        velo.append(size / (time.perf_counter() - started))
        assert status == Batch.Status.PARTIAL, status
        rows = _stored_rows(batch_id)
        assert len(rows) == size, len(rows)
        ref.append(size / _copy_reference(rows, 10**12 + n))
        all_rows.append(size / _copy_all_rows(batch_id))
    log(f"  velo rows/s per batch: {[round(v) for v in velo]}")
    log(f"  COPY rows/s per batch: {[round(v) for v in ref]}")
    log(f"  COPY of all the rows of the failures, failures/s: {[round(v) for v in all_rows]}")
    _reference_tables(create=False)
    data.drop_job(JOB)
    return [
        Row(
            "1 DLQ persistence (all fail, send_to_dlq)",
            median(velo),
            median(ref),
            "rows/s",
            0.6,
            True,
            ">= 0.6x COPY",
            note=f"median of {batches} batches of {size} records, engine.process_batch "
            "in-process vs COPY of the same rows into LIKE dlq_dlqentry INCLUDING ALL; "
            "COPY of all the rows Velo writes for them (an entry per failure, "
            "an occurrence per message): "
            f"{median(all_rows):,.0f} failures/s ({median(velo) / median(all_rows):.2f}x)",
        )
    ]
