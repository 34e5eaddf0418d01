"""The demo: jobs covering the four failure strategies, fed trades with a realistic mix of failures.

Records come from a seeded random.Random, so which records fail, and how, is
the same on every run with the same seed.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections

from dlq import jobs_file
from dlq.ingest import submit_batch
from dlq.models import Job

log = logging.getLogger(__name__)

# The demo jobs as Python data, in the shape of a sync_jobs TOML file's [[jobs]]
# tables (same keys, applied by the same code), so they double as an example of
# jobs as code. A real deployment would keep them in a .toml file instead.
DEMO_JOBS = [
    {
        "name": "trades",
        "processor": "demo.trades",
        "failure_strategy": "log_and_continue",
    },
    {
        "name": "orders",
        "processor": "json_schema",
        "failure_strategy": "send_to_dlq",
        "dlq_max_size": 5000,
        "config": {
            "schema": {
                "type": "object",
                "required": ["symbol", "price"],
                "properties": {
                    "symbol": {"type": "string"},
                    "price": {"type": "number"},
                    "qty": {"type": "integer", "minimum": 1},
                },
            }
        },
    },
    {
        "name": "ledger",
        "processor": "demo.trades",
        "failure_strategy": "fail_batch",
        "max_retries": 2,
        "retry_initial_delay": 0.5,
        "retry_max_delay": 2.0,
    },
    {
        "name": "flaky-feed",
        "processor": "demo.flaky",
        "failure_strategy": "retry_with_backoff",
        "config": {"fail_attempts": 2},
        "max_retries": 3,
        "retry_initial_delay": 0.5,
        "retry_max_delay": 5.0,
    },
    {
        # A small DLQ that fills up while the demo runs: HEALTHY, CAUTION,
        # WARNING, then CRITICAL with rejected entries.
        "name": "payments",
        "processor": "demo.trades",
        "failure_strategy": "send_to_dlq",
        "dlq_max_size": 50,
        "dlq_full_policy": "reject",
    },
]

# Share of bad records per job; every flaky-feed record fails twice, then succeeds.
FAILURE_RATES = {"trades": 0.03, "orders": 0.04, "ledger": 0.0, "flaky-feed": 0.0, "payments": 0.08}
# One bad record fails a whole fail_batch batch, so the ledger gets exactly one
# in its first batch and every third after it, rather than a random share.
ONE_BAD_RECORD_EVERY = {"ledger": 3}
SYMBOLS = ["ACME", "GLOBX", "INITECH", "UMBRL", "STARK", "WAYNE", "TYRELL", "CYBRD"]


def ensure_demo_jobs():
    """Create the demo jobs that are missing; the names created.

    A demo job that exists is left as it is: an operator may have edited it in
    the admin, and `make run` must not undo that.
    """
    names = [job["name"] for job in DEMO_JOBS]
    existing = set(Job.objects.filter(name__in=names).values_list("name", flat=True))
    results = jobs_file.apply([job for job in DEMO_JOBS if job["name"] not in existing])
    return [result.name for result in results if result.action == "created"]


def trade(rng, number):
    return {
        "trade_id": f"T{number:08d}",
        "symbol": rng.choice(SYMBOLS),
        "price": round(rng.uniform(5, 900), 2),
        "qty": rng.randint(1, 500),
        "side": rng.choice(["buy", "sell"]),
    }


def spoil(rng, record, job_name):
    """Break a record the way real feeds break, with variable values so errors group."""
    kinds = ["no_symbol", "comma_price", "text_price", "string_price"]
    kinds += ["bad_qty"] if job_name == "orders" else ["empty_symbol"]
    kind = rng.choice(kinds)
    if kind == "no_symbol":
        del record["symbol"]
    elif kind == "comma_price":
        record["price"] = f"{rng.randint(1, 900)},{rng.randint(0, 99):02d}"
    elif kind == "text_price":
        record["price"] = rng.choice(["abc", "N/A", "twelve", "-"])
    elif kind == "string_price":
        record["price"] = str(record["price"])
    elif kind == "bad_qty":
        record["qty"] = -rng.randint(1, 1000)
    else:
        record["symbol"] = ""
    return record


@dataclass
class Feed:
    """What the demo has submitted so far."""

    rng: object
    next_number: int = 1
    batches: int = 0
    records: int = 0
    bad: int = 0
    per_job: Counter = field(default_factory=Counter)  # batches per job name

    def submit(self, job, size, failure_rate):
        every = ONE_BAD_RECORD_EVERY.get(job.name)
        bad_one = self.rng.randrange(size) if every and self.per_job[job.name] % every == 0 else -1
        records, bad = [], 0
        for index, number in enumerate(range(self.next_number, self.next_number + size)):
            record = trade(self.rng, number)
            if index == bad_one or self.rng.random() < failure_rate:
                spoil(self.rng, record, job.name)
                bad += 1
            records.append(record)
        batch, _ = submit_batch(job, records, submitted_by="velo_demo")
        self.next_number += size
        self.per_job[job.name] += 1
        self.batches += 1
        self.records += size
        self.bad += bad
        return batch


def feed(state, count, *, batch_size=100):
    """Submit `count` records spread evenly over the demo jobs, in batches of `batch_size`."""
    jobs = _demo_jobs()
    if not jobs:
        return state
    sizes = []
    for position, job in enumerate(jobs):
        share = count // len(jobs) + (position < count % len(jobs))
        sizes += [(job, min(batch_size, share - start)) for start in range(0, share, batch_size)]
    state.rng.shuffle(sizes)  # interleaved, as traffic from several sources would be
    for job, size in sizes:
        state.submit(job, size, FAILURE_RATES.get(job.name, 0.03))
    return state


def feed_forever(state, *, interval=2.0, on_batch=None, sleep=time.sleep):
    """Submit a small batch to a random demo job every `interval` seconds until interrupted.

    Now and then a batch comes from an "incident" with many bad records, so the
    error history has spikes, not only a flat rate. A database hiccup skips a
    beat instead of ending the feeder (and with it every process of `make run`).
    """
    jobs = _demo_jobs()
    while jobs:
        job = state.rng.choice(jobs)
        rate = FAILURE_RATES.get(job.name, 0.03)
        if rate and state.rng.random() < 0.05:
            rate = 0.3  # an incident upstream
        try:
            batch = state.submit(job, state.rng.randint(10, 50), rate)
        except DatabaseError as exc:
            log.warning("demo batch for %s not submitted: %s", job.name, exc)
            close_old_connections()  # a broken connection is replaced at the next submit
        else:
            if on_batch:
                on_batch(batch)
        sleep(interval)
    return state


def _demo_jobs():
    return list(Job.objects.filter(name__in=[job["name"] for job in DEMO_JOBS]).order_by("name"))
