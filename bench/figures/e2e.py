"""Figures 2 and 7: end-to-end records/s, and the worker's memory after many records.

Velo: records POSTed over HTTP to one gunicorn (1,000-record batches, 1 %
failing, demo.trades under send_to_dlq), one Celery worker (prefork,
concurrency 2) processing them; a run is timed from its first POST until the
database says every batch of it is final. Reference: the same records sent to
a bare Celery task running the same processor (bench/bare.py) on its own
worker of the same shape. Both workers and gunicorn run throughout, and Velo
and bare runs alternate, so the machine's other load hits both alike.

Memory: the whole Velo worker's RSS (parent + pool children) after its first
10,000 records and again after `memory_records` in all.
"""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from dlq.models import Batch, Job
from dlq.tokens import create_token

from .. import bare, data, procs
from ..environment import QUEUE, REDIS_URL
from ..timing import Row, median

JOB = "bench-e2e"
BATCH = 1000
FAIL_EVERY = 100  # 1 %
SUBMITTERS = 2


def records(fail_every=FAIL_EVERY):
    """One batch: every `fail_every`-th record has a text price (demo.trades refuses it);
    None: none fails, 1: all do."""
    out = []
    for i in range(BATCH):
        record = {
            "trade_id": i,
            "symbol": "ACME",
            "price": 10.5 + i % 7,
            "qty": 1 + i % 50,
            "venue": "XLON",
            "ts": "2025-01-01T12:00:00Z",
        }
        if fail_every and i % fail_every == fail_every - 1:
            record["price"] = "n/a"
        out.append(record)
    return out


class Velo:
    """Batches POSTed to `job` over HTTP; `batches` are the bodies' records, sent in turn."""

    def __init__(self, web, token, job, batches=None):
        self.url = f"{web.url}/api/v1/jobs/{job.name}/batches"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.bodies = [json.dumps(each).encode() for each in (batches or [records()])]
        self.sent = 0
        self.job = job
        self.local = threading.local()

    def _post(self, n):
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        body = self.bodies[n % len(self.bodies)]
        response = session.post(self.url, data=body, headers=self.headers, timeout=60)
        assert response.status_code == 202, response.text

    def run(self, batches, timeout=1800):
        started = time.perf_counter()
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            list(pool.map(self._post, range(self.sent, self.sent + batches)))
        self.sent += batches
        procs.wait_for(
            lambda: not Batch.objects.filter(job=self.job, status__in=Batch.IN_FLIGHT).exists(),
            timeout=timeout,
            interval=0.05,
            what="Velo's batches to finish",
        )
        return batches * BATCH / (time.perf_counter() - started)


class Bare:
    def __init__(self):
        self.records = records()
        self.redis = redis.Redis.from_url(REDIS_URL)

    def run(self, batches, timeout=600):
        key = f"bench:bare:{uuid.uuid4().hex}"
        started = time.perf_counter()
        for _ in range(batches):
            bare.process.apply_async((self.records, key), queue=bare.QUEUE)
        procs.wait_for(
            lambda: int(self.redis.get(key) or 0) >= batches * BATCH,
            timeout=timeout,
            interval=0.05,
            what="bare batches",
        )
        return batches * BATCH / (time.perf_counter() - started)


def start_velo(started):
    """Figure 2's Velo: one gunicorn and one worker (prefork, concurrency 2), each added to
    `started` as soon as it runs, so the caller stops what started whatever fails."""
    started.append(procs.gunicorn())
    started.append(procs.celery_worker("velo-worker", "velo_site", QUEUE))
    return started[-2:]


def run(quick, log):
    runs, per_run = (3, 20) if quick else (5, 40)
    memory_records = 100_000 if quick else 1_000_000
    (job,) = data.create_jobs([JOB], dlq_max_size=None)
    _, token = create_token("bench")
    started = []
    try:
        web, worker = start_velo(started)
        started.append(procs.celery_worker("bare-worker", "bench.bare", bare.QUEUE, django=False))
        velo, reference = Velo(web, token, job), Bare()
        velo.run(10)  # warm-up, and the first 10,000 records of the memory figure
        reference.run(10)
        rss_start = worker.rss_bytes()
        velo_rates, bare_rates = [], []
        for _ in range(runs):
            velo_rates.append(velo.run(per_run))
            bare_rates.append(reference.run(per_run))
        log(f"  Velo records/s per run: {[round(r) for r in velo_rates]}")
        log(f"  bare records/s per run: {[round(r) for r in bare_rates]}")
        done = (10 + runs * per_run) * BATCH
        log(
            f"  worker RSS after 10,000 records: {rss_start / 2**20:.1f} MiB; "
            f"sending {memory_records - done:,} more records"
        )
        rest_rate = velo.run((memory_records - done) // BATCH)
        rss_end = worker.rss_bytes()
        processed = Job.objects.get(name=JOB).counters.records_processed
        log(f"  {processed:,} records processed by the worker ({rest_rate:,.0f}/s on the bulk run)")
    finally:
        for process in reversed(started):
            process.stop()
    data.drop_job(JOB)
    return [
        Row(
            "2 end-to-end HTTP -> worker -> done",
            median(velo_rates),
            median(bare_rates),
            "records/s",
            0.4,
            True,
            ">= 0.4x bare",
            note=f"median of {runs} runs of {per_run} batches x {BATCH} records (1 % fail), "
            "1 gunicorn + 1 prefork worker (concurrency 2) vs bare task on the same worker shape",
        ),
        Row(
            "7 worker RSS after N records vs 10,000",
            rss_end,
            rss_start,
            "MiB",
            1.2,
            False,
            "<= 1.2x",
            note=f"N = {processed:,}; RSS of the worker's parent + pool children from /proc",
        ),
    ]
