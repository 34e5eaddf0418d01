"""Processes the benchmark starts (gunicorn, Celery workers): logged to files, always stopped."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .environment import LOG_DIR, ROOT, child_env


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, name, argv, env):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = LOG_DIR / f"{name}.log"
        self.proc = None

    def start(self, ready):
        self.log_path.write_bytes(b"")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: self.proc.poll() is not None or ready(), 90, f"{self.name} to start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
        return self

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """SIGTERM the process group, SIGKILL it if it is still there after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def rss_bytes(self):
        """VmRSS of the process and every descendant (a prefork pool's children), summed."""
        return sum(_rss(pid) for pid in _tree(self.proc.pid))


def _tree(pid):
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            stack += [int(p) for p in children.read_text().split()]
    return pids


def _rss(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def celery_worker(name, app, queue, concurrency=2, django=True):
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--queues",
        queue,
        "--loglevel",
        "WARNING",
        "--hostname",
        f"{name}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    env = child_env()
    if not django:  # Celery's Django fixup would set Django up in the worker otherwise
        env.pop("DJANGO_SETTINGS_MODULE")
    worker = Process(name, argv, env)
    # With --loglevel WARNING the banner still ends in "ready." only at INFO: wait on the pool.
    return worker.start(lambda: len(_tree(worker.proc.pid)) > concurrency)


def gunicorn():
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "velo_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--access-logfile",
        "-",
    ]
    web = Process("gunicorn", argv, child_env())

    def answers():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    web.start(answers)
    web.url = f"http://127.0.0.1:{port}"
    return web
