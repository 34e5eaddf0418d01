"""Figure 1: DLQ persistence, rows/s, against raw COPY of the same rows into an equivalent table.

Velo: the engine called in-process (`engine.process_batch`) on batches
submitted beforehand, where every record fails under send_to_dlq: the time
covers the processor, grouping, occurrences, rollups, the DLQ rows, their
attempt rows, counters and the batch's own update, committed. Reference: the
very rows Velo stored, COPYed (text format, one transaction, committed) into a
table made `LIKE dlq_dlqentry INCLUDING ALL` (same columns, the same ten
indexes, logged). Runs alternate Velo / COPY, so noise hits both alike.
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
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {REF_TABLE}")
        cursor.execute(f"CREATE TABLE {REF_TABLE} (LIKE dlq_dlqentry INCLUDING ALL)")
    engine.process_batch(ids[0])  # warm-up: creates the group, the rollup, caches
    velo, ref = [], []
    for n, batch_id in enumerate(ids[1:], start=1):
        started = time.perf_counter()
        status = engine.process_batch(batch_id)
        velo.append(size / (time.perf_counter() - started))
        assert status == Batch.Status.PARTIAL, status
        rows = _stored_rows(batch_id)
        assert len(rows) == size, len(rows)
        ref.append(size / _copy_reference(rows, 10**12 + n))
    log(f"  velo rows/s per batch: {[round(v) for v in velo]}")
    log(f"  COPY rows/s per batch: {[round(v) for v in ref]}")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {REF_TABLE}")
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
            "in-process vs COPY of the same rows into LIKE dlq_dlqentry INCLUDING ALL",
        )
    ]
