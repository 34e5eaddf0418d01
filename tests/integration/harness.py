"""Real processes for integration tests: a Celery worker (with beat) and a web server."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url():
    """The URL of the database pytest-django created, for processes of our own."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process with its output in a log file, stopped for good at the end."""

    def __init__(self, name, argv, env, log_dir):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = Path(log_dir) / f"{name}.log"
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self):
        """SIGKILL the whole process group: no chance to clean up, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


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

    def __init__(self, log_dir, name="worker", **env):
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
            "2",
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
        super().start()
        wait_for(
            lambda: "ready." in self.log()[offset:] or self.proc.poll() is not None,
            timeout=60,
            what=f"{self.name} to start",
        )
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
        return self


class WebServer(Process):
    def __init__(self, log_dir, name="web", **env):
        self.port = free_port()
        argv = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"]
        super().__init__(name, argv, child_env(**env), log_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        super().start()

        def answers():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(answers, timeout=60, what="the web server")
        return self
