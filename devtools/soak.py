"""The chaos soak's machinery: a Velo of its own under load while its parts are killed.

Used by the soak test (tests/integration/test_soak.py, which checks the accounting
afterwards) and by `make bench` (throughput with faults against without). Everything runs
on copies of its own: a scratch PostgreSQL cluster and Redis on free ports
(devtools.services), gunicorn, a control worker, two prefork batch workers and beat. A
client submits batches over HTTP with an Idempotency-Key and sends each again until it is
accepted.
"""

import json
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

import psycopg
import requests

from .processes import ROOT, ChildProcess, free_port, wait_for
from .services import ScratchPostgres, ScratchRedis

GOOD = {"symbol": "ACME", "price": 10.5}
BAD = {"price": 1}  # demo.trades: "Missing required column 'symbol'"
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
    unexpected: list = field(default_factory=list)  # answers other than 202 and 503
    crashed: BaseException | None = None

    def run(self):
        try:
            self._load()
        except BaseException as exc:  # the test reads it: a client thread dies silently
            self.crashed = exc

    def _load(self):
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
            if response.status_code != 503:  # anything but "come back later" is a finding
                self.unexpected.append((response.status_code, response.text[:500]))
                return
            time.sleep(0.3)


def soak_env(**overrides):
    """The environment of the soak's processes: the test settings, queues of its own."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="velo_site.settings_test",
        VELO_PROCESSORS="tests.processors",
        VELO_QUEUE=f"velo-soak-{os.getpid()}",
        VELO_CONTROL_QUEUE=f"velo-soak-control-{os.getpid()}",
        VELO_DISPATCH_INTERVAL="0.5",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class ScratchSite:
    """A Velo on a scratch PostgreSQL cluster of its own, which its user may stop and crash.

    `env` is the environment of its processes and commands (DATABASE_URL is set here);
    rows are read back with plain SQL.
    """

    def __init__(self, tmp_path, env, **overrides):
        self.tmp = tmp_path
        self.pg = ScratchPostgres().start()
        self.env = {**env, "DATABASE_URL": self.pg.url, "DATABASE_CONN_MAX_AGE": "60"}
        self.env.update({k: str(v) for k, v in overrides.items()})

    def manage(self, *argv):
        result = subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(argv)} failed:\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def prepare(self, jobs):
        """Migrate, create `jobs` ({name: Job fields}) and a token that may requeue; the token."""
        self.manage("migrate", "--noinput", "-v", "0")
        script = (
            "import json; from dlq.models import Job; from dlq.tokens import create_token\n"
            f"for name, fields in json.loads({json.dumps(json.dumps(jobs))}).items():\n"
            "    Job.objects.create(name=name, **fields)\n"
            "print(create_token('scratch', can_requeue=True)[1])\n"
        )
        return self.manage("shell", "-c", script).strip().splitlines()[-1]

    def _connect(self):
        return psycopg.connect(self.pg.url.replace("postgres://", "postgresql://", 1))

    def rows(self, sql, *params):
        with self._connect() as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql, *params):
        with self._connect() as conn:
            conn.execute(sql, params)

    def value(self, sql, *params):
        return self.rows(sql, *params)[0][0]

    def remove(self):
        self.pg.remove()


class Soak(ScratchSite):
    """The soak's own PostgreSQL, Redis, web server, control worker, two batch workers and beat."""

    def __init__(self, tmp_path):
        self.redis = ScratchRedis().start()
        super().__init__(tmp_path, soak_env(CELERY_BROKER_URL=self.redis.url))
        self.web_port = free_port()
        self.processes, self.starters, self.down = {}, {}, set()
        self.lock, self.stopping, self.restarts = threading.RLock(), threading.Event(), []

    def _process(self, name, argv, ready):
        with self.lock:
            process = ChildProcess(name, argv, self.env, self.tmp / f"{name}.log")
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
                    if self.stopping.is_set():
                        return
                    self.restarts.append((name, process.proc.returncode))
                    try:
                        self.starters[name]()
                    except Exception as exc:  # e.g. the database is down: the next look retries
                        self.restarts.append((name, f"restart failed: {exc}"[:200]))

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


@dataclass
class Outcome:
    """What a soak run did: what the client had accepted, and how long the work took."""

    accepted: dict
    answers: Counter
    unexpected: list
    crashed: BaseException | None
    faults: list
    restarts: list
    seconds: float  # from the first submission to every batch finished
    settled_after_last_fault: float

    @property
    def records(self):
        return sum(sent.records for sent in self.accepted.values())


def start(soak):
    """Migrate, then start web, the control worker, both batch workers, beat and the
    supervisor; return the API token."""
    token = soak.prepare(JOBS)
    soak.start_web()
    soak.start_worker("soak-control", queue=soak.env["VELO_CONTROL_QUEUE"], pool="threads")
    soak.start_worker("soak-a")
    soak.start_worker("soak-b")
    soak.start_beat()
    threading.Thread(target=soak.supervise, name="soak-supervisor", daemon=True).start()
    return token


def run(soak, token, faults=True, load_seconds=LOAD_SECONDS, settle_timeout=SETTLE_TIMEOUT):
    """Load for `load_seconds` (with the fault schedule, or none), then wait for every batch."""
    load = Load(soak.url, token)
    client = threading.Thread(target=load.run, name="soak-client", daemon=True)
    started = time.monotonic()
    client.start()
    done = []

    def at(second):
        time.sleep(max(0.0, started + second - time.monotonic()))

    def fault(name, do):
        do()
        done.append((round(time.monotonic() - started, 1), name))

    if faults:
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
    at(load_seconds)
    load.stop.set()
    client.join(60)
    if client.is_alive():
        raise RuntimeError("the soak's client is stuck")
    try:
        wait_for(
            lambda: (
                soak.value("SELECT count(*) FROM dlq_batch WHERE status <> ALL(%s)", list(FINAL))
                == 0
            ),
            timeout=settle_timeout,
            interval=0.5,
            what="every batch to finish",
        )
    except AssertionError:
        stuck = soak.rows(
            "SELECT b.id, j.name, b.status, b.attempts, b.lost_attempts, b.next_attempt_at,"
            " b.dispatched_at, b.worker, b.last_error FROM dlq_batch b"
            " JOIN dlq_job j ON j.id = b.job_id WHERE b.status <> ALL(%s) ORDER BY b.id",
            list(FINAL),
        )
        print(f"unfinished batches: {stuck[:10]}")
        raise
    now = time.monotonic()
    return Outcome(
        load.accepted,
        load.answers,
        load.unexpected,
        load.crashed,
        done,
        list(soak.restarts),
        now - started,
        now - last_fault,
    )
