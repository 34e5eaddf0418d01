"""Real processes for integration tests: a Celery worker (with beat) and a web server."""

import os
import sys
from pathlib import Path

from django.db import connection

from devtools.processes import ROOT, ChildProcess, answers_on, free_port, wait_for

__all__ = (
    "ROOT",
    "Process",
    "WebServer",
    "Worker",
    "batch_queue",
    "child_env",
    "control_queue",
    "free_port",
    "serves_live",
    "wait_for",
)


def test_database_url():
    """The URL of the database pytest-django created, for processes of our own."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def serves_live(url):
    """Whether the web server at `url` answers /live (for wait_for)."""
    import requests

    try:
        return requests.get(f"{url}/live", timeout=5).status_code == 200
    except requests.RequestException:
        return False


class Process(ChildProcess):
    """A child process logging to `<log_dir>/<name>.log`."""

    def __init__(self, name, argv, env, log_dir):
        super().__init__(name, argv, env, Path(log_dir) / f"{name}.log")


def child_env(**overrides):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="velo_site.settings_test",
        DATABASE_URL=test_database_url(),
        VELO_DISPATCH_INTERVAL="0.5",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def batch_queue():
    return os.environ["VELO_QUEUE"]


def control_queue():
    return os.environ["VELO_CONTROL_QUEUE"]


class Worker(Process):
    """`celery worker -B`: the worker and beat in one process, as a small deployment runs.

    Without `queues` it consumes every queue of the settings: the batch queue
    and the control queue (the beat tick); `beat=False` leaves beat out; `node` fixes its node
    name (a restarted worker keeps its name, as under a supervisor).
    """

    def __init__(
        self,
        log_dir,
        name="worker",
        *,
        pool="threads",
        concurrency=2,
        queues=None,
        beat=True,
        node=None,
        **env,
    ):
        argv = [sys.executable, "-m", "celery", "-A", "velo_site", "worker"]
        if beat:
            argv += ["--beat", "--schedule", str(Path(log_dir) / f"{name}-beat-schedule")]
        if queues:
            argv += ["--queues", ",".join(queues)]
        argv += [
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            node or f"{name}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        super().__init__(name, argv, child_env(**env), log_dir)

    def start(self):
        offset = len(self.log())
        return super().start(ready=lambda: "ready." in self.log()[offset:], timeout=60)


class WebServer(Process):
    def __init__(self, log_dir, name="web", **env):
        self.port = free_port()
        argv = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"]
        super().__init__(name, argv, child_env(**env), log_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        return super().start(ready=lambda: answers_on(self.port), timeout=60)
