"""The chaos soak: real load through real processes while everything they depend on fails.

A client submits batches over HTTP with an Idempotency-Key and retries each until it is
accepted, while the soak SIGKILLs workers, beat and a web worker, kills Redis for seconds
and restarts PostgreSQL. The database and the broker are copies of the soak's own on free
ports (devtools.services), never the shared ones. Afterwards every accepted batch is
accounted for exactly once: one batch row per key, every batch finished, one DLQ entry per
failed record, the job counters equal to the rows, and /metrics equal to the counters.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from devtools.services import ScratchRedis, postgres_available
from tests.conftest import BAD, GOOD

from .harness import Process, free_port, wait_for
from .scratch import ScratchSite

pytestmark = [
    pytest.mark.soak,
    pytest.mark.worker,
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the soak runs in the PostgreSQL + Redis leg (it brings its own copies of both)",
    ),
    pytest.mark.skipif(bool(postgres_available()), reason=postgres_available() or "ok"),
    pytest.mark.skipif(bool(ScratchRedis.available()), reason=ScratchRedis.available() or "ok"),
]

LOAD_SECONDS = 60
SETTLE_TIMEOUT = 120
JOBS = {
    "soak-dlq": {"processor": "demo.trades", "failure_strategy": "send_to_dlq"},
    "soak-retry": {
        "processor": "demo.trades",
        "failure_strategy": "retry_with_backoff",
        "max_retries": 1,
        "retry_initial_delay": 0.5,
    },
    # One record in each of its batches hangs in a GIL-holding regex or a sleep:
    # stopped at its record_timeout (the soft limit, or the watchdog's kill).
    "soak-hang": {
        "processor": "test.hangs",
        "failure_strategy": "send_to_dlq",
        "record_timeout": 2,
    },
}
LOADED_JOBS = ("soak-dlq", "soak-retry")
HANGS = ({"hang": "regex"}, {"hang": "sleep", "seconds": 3600})
FINAL = ("succeeded", "partial", "failed")


def celery(*args):
    return [sys.executable, "-m", "celery", "-A", "velo_site", *args, "--loglevel", "INFO"]


@dataclass
class Accepted:
    """What the client knows of a batch the service accepted (202)."""

    job: str
    batch_id: int
    records: int
    bad: int


@dataclass
class Load:
    """The client: submits until told to stop, retrying each batch with its key until accepted."""

    url: str
    token: str
    seed: int = 11
    accepted: dict = field(default_factory=dict)
    answers: Counter = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self):
        rng = random.Random(self.seed)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        while not self.stop.is_set():
            if rng.random() < 0.02:
                job, records = "soak-hang", [{"n": i} for i in range(20)]
                records[rng.randrange(20)] = rng.choice(HANGS)
            else:
                job, size = rng.choice(LOADED_JOBS), rng.randint(50, 400)
                records = [BAD if rng.random() < 0.1 else GOOD for _ in range(size)]
            self._submit(session, job, records, key=str(uuid.uuid4()))
            time.sleep(0.05)

    def _submit(self, session, job, records, key):
        while True:  # the client's job: a batch not yet accepted is sent again, same key
            try:
                response = session.post(
                    f"{self.url}/api/v1/jobs/{job}/batches",
                    json=records,
                    headers={"Idempotency-Key": key},
                    timeout=10,
                )
            except requests.RequestException as exc:
                self.answers[type(exc).__name__] += 1
                time.sleep(0.3)
                continue
            self.answers[response.status_code] += 1
            if response.status_code == 202:
                batch_id = response.json()["batch_id"]
                bad = sum(record == BAD or "hang" in record for record in records)
                self.accepted[key] = Accepted(job, batch_id, len(records), bad)
                return
            assert response.status_code == 503, f"{response.status_code}: {response.text[:500]}"
            time.sleep(0.3)


class Soak(ScratchSite):
    """The soak's own PostgreSQL, Redis, web server, two workers and beat."""

    def __init__(self, tmp_path):
        self.redis = ScratchRedis().start()
        super().__init__(
            tmp_path,
            CELERY_BROKER_URL=self.redis.url,
            VELO_QUEUE=f"velo-soak-{os.getpid()}",
        )
        self.web_port = free_port()
        self.processes, self.starters, self.down = {}, {}, set()
        self.lock, self.stopping, self.restarts = threading.RLock(), threading.Event(), []

    def _process(self, name, argv, ready):
        with self.lock:
            process = Process(name, argv, self.env, self.tmp)
            offset = len(process.log())
            process.start(ready=lambda: ready in process.log()[offset:], timeout=90)
            self.processes[name] = process
            self.starters[name] = lambda: self._process(name, argv, ready)
            self.down.discard(name)
            return process

    def supervise(self):
        """Restart what exits by itself, as compose's `restart: unless-stopped` or systemd does.

        A Celery worker can exit on a broker outage: kombu's Redis transport raises
        "'NoneType' object has no attribute 'hostname'" while restoring unacknowledged
        messages as the connection drops, which Celery treats as unrecoverable.
        """
        while not self.stopping.wait(0.5):
            for name in list(self.processes):
                with self.lock:
                    process = self.processes[name]
                    if name in self.down or process.proc.poll() is None:
                        continue
                    if not self.stopping.is_set():
                        self.restarts.append((name, process.proc.returncode))
                        self.starters[name]()

    def start_web(self):
        env_argv = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
        self.env.update(GUNICORN_BIND=f"127.0.0.1:{self.web_port}", WEB_CONCURRENCY="2")
        return self._process("web", env_argv, "Booting worker")

    def start_worker(self, name, queue=None, pool="prefork"):
        """A batch worker (Velo's queue, prefork), or with `queue` the control worker."""
        queue = queue or self.env["VELO_QUEUE"]
        options = ["--pool", pool, "--concurrency", "2", "--hostname", f"{name}@%h", "-Q", queue]
        quiet = ["--without-gossip", "--without-mingle"]
        return self._process(name, celery("worker", *options, *quiet), "ready.")

    def start_beat(self):
        schedule = ["--schedule", str(self.tmp / "beat-schedule")]
        return self._process("beat", celery("beat", *schedule), "beat: Starting")

    def kill(self, name):
        """SIGKILL it and keep it down (the supervisor leaves it) until it is started again."""
        with self.lock:
            self.down.add(name)
            self.processes[name].kill()

    def kill_a_web_worker(self):
        """SIGKILL one gunicorn worker (the arbiter starts another), not the arbiter."""
        arbiter = self.processes["web"].proc.pid
        children = subprocess.run(
            ["pgrep", "-P", str(arbiter)], capture_output=True, text=True
        ).stdout.split()
        os.kill(int(children[0]), signal.SIGKILL)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.web_port}"

    def stop(self):
        self.stopping.set()
        for process in self.processes.values():
            process.stop(grace=10)
        self.redis.stop()
        self.remove()


@pytest.fixture
def soak(tmp_path):
    started = Soak(tmp_path)
    try:
        yield started
    finally:
        started.stop()
        for process in started.processes.values():
            print(f"--- {process.name} log (tail)\n{process.log()[-3000:]}")


def test_chaos_soak_loses_nothing_and_counts_everything_once(soak):
    token = soak.prepare(JOBS)
    soak.start_web()
    soak.start_worker("soak-control", queue=soak.env["VELO_CONTROL_QUEUE"], pool="threads")
    soak.start_worker("soak-a")
    soak.start_worker("soak-b")
    soak.start_beat()
    threading.Thread(target=soak.supervise, name="soak-supervisor", daemon=True).start()
    load = Load(soak.url, token)
    client = threading.Thread(target=load.run, name="soak-client", daemon=True)
    started = time.monotonic()
    client.start()

    def at(second):
        time.sleep(max(0.0, started + second - time.monotonic()))

    faults = []

    def fault(name, do):
        do()
        faults.append((round(time.monotonic() - started, 1), name))

    at(6)
    fault("SIGKILL worker soak-a", lambda: soak.kill("soak-a"))
    at(8)
    soak.start_worker("soak-a")
    at(14)
    fault("Redis killed", soak.redis.stop)
    at(19)
    fault("Redis back", soak.redis.start)
    at(25)
    fault("PostgreSQL stopped (immediate)", lambda: soak.pg.stop("immediate"))
    at(28)
    fault("PostgreSQL back", soak.pg.start)
    at(34)
    fault("SIGKILL beat", lambda: soak.kill("beat"))
    at(36)
    soak.start_beat()
    at(40)
    fault("SIGKILL a gunicorn worker", soak.kill_a_web_worker)
    at(46)
    fault("SIGKILL worker soak-b", lambda: soak.kill("soak-b"))
    at(48)
    soak.start_worker("soak-b")
    last_fault = time.monotonic()
    at(LOAD_SECONDS)
    load.stop.set()
    client.join(60)
    assert not client.is_alive(), "the client is stuck"
    accepted = load.accepted

    def all_finished():
        return (
            soak.rows("SELECT count(*) FROM dlq_batch WHERE status <> ALL(%s)", list(FINAL))[0][0]
            == 0
        )

    try:
        wait_for(all_finished, timeout=SETTLE_TIMEOUT, interval=0.5, what="every batch to finish")
    except AssertionError:
        stuck = soak.rows(
            "SELECT b.id, j.name, b.status, b.attempts, b.lost_attempts, b.next_attempt_at,"
            " b.dispatched_at, b.worker, b.last_error FROM dlq_batch b"
            " JOIN dlq_job j ON j.id = b.job_id WHERE b.status <> ALL(%s) ORDER BY b.id",
            list(FINAL),
        )
        print(f"unfinished batches: {stuck[:10]}")
        raise
    recovered_after = time.monotonic() - last_fault
    print(f"faults: {faults}")
    print(f"client answers: {dict(load.answers)}; {len(accepted)} batches accepted")
    print(f"restarted by the supervisor after exiting by themselves: {soak.restarts}")
    print(f"all work done {recovered_after:.1f} s after the last fault")

    assert len(accepted) > 50, load.answers
    assert 500 not in load.answers, load.answers

    # One batch row per accepted key, and it is the one the client was told about.
    batches = {
        key: (batch_id, job, count, status, failed, dlq_added)
        for key, batch_id, job, count, status, failed, dlq_added in soak.rows(
            "SELECT b.idempotency_key, b.id, j.name, b.record_count, b.status, b.failed,"
            " b.dlq_added FROM dlq_batch b JOIN dlq_job j ON j.id = b.job_id"
        )
    }
    assert set(batches) == set(accepted)
    entries = Counter(
        dict(soak.rows("SELECT batch_id, count(*) FROM dlq_dlqentry GROUP BY batch_id"))
    )
    wrong = {}
    for key, sent in accepted.items():
        batch_id, job, count, status, failed, dlq_added = batches[key]
        expected_status = "succeeded" if sent.bad == 0 else "partial"
        seen = (batch_id, job, count, status, dlq_added, entries[batch_id])
        if seen != (sent.batch_id, sent.job, sent.records, expected_status, sent.bad, sent.bad):
            wrong[key] = seen
    assert wrong == {}, f"batches not counted exactly once: {list(wrong.items())[:5]}"
    assert (
        soak.rows("SELECT batch_id, index FROM dlq_dlqentry GROUP BY 1, 2 HAVING count(*) > 1")
        == []
    )

    # The job counters equal the rows, and /metrics equals the counters.
    counters = soak.rows(
        "SELECT j.name, c.records_processed, c.records_failed, c.dlq_added,"
        " c.batches_succeeded + c.batches_partial + c.batches_failed,"
        " (SELECT sum(processed) FROM dlq_batch WHERE job_id = j.id),"
        " (SELECT sum(failed) FROM dlq_batch WHERE job_id = j.id),"
        " (SELECT count(*) FROM dlq_dlqentry WHERE job_id = j.id),"
        " (SELECT count(*) FROM dlq_batch WHERE job_id = j.id)"
        " FROM dlq_job j JOIN dlq_jobcounters c ON c.job_id = j.id"
    )
    for name, processed, failed, added, finished, *from_rows in counters:
        assert [processed, failed, added, finished] == from_rows, name
    scraped = _scrape(soak.url)
    for name, processed, failed, added, _, *_rest in counters:
        assert scraped[("velo_records_processed_total", name)] == processed
        assert scraped[("velo_records_failed_total", name)] == failed
        assert scraped[("velo_dlq_entries_added_total", name)] == added


def _scrape(url):
    text = requests.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, sample.labels.get("job_name")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job_name", "").startswith("soak-")
    }
