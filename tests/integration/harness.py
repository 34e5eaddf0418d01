"""Real processes for integration tests: a Celery worker (with beat) and a web server."""

import os
import sys
from pathlib import Path

from django.db import connection

from devtools.processes import ROOT, ChildProcess, answers_on, free_port, wait_for

__all__ = ("ROOT", "Process", "WebServer", "Worker", "child_env", "free_port", "wait_for")


def test_database_url():
    """The URL of the database pytest-django created, for processes of our own."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


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


class Worker(Process):
    """`celery worker -B`: the worker and beat in one process, as a small deployment runs."""

    def __init__(self, log_dir, name="worker", concurrency=2, **env):
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "velo_site",
            "worker",
            "--beat",
            "--schedule",
            str(Path(log_dir) / f"{name}-beat-schedule"),
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
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
