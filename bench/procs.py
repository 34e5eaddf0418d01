"""Processes the benchmark starts (gunicorn, Celery workers): logged to files, always stopped."""

import os
import sys
from pathlib import Path

from devtools.processes import ChildProcess, answers_on, free_port, wait_for

from .environment import LOG_DIR, child_env

__all__ = ("Process", "celery_worker", "free_port", "gunicorn", "wait_for")


class Process(ChildProcess):
    """A benchmark's child process: a fresh log in var/bench/, and its memory."""

    def __init__(self, name, argv, env):
        super().__init__(name, argv, env, LOG_DIR / f"{name}.log")

    def start(self, ready):
        self.log_path.write_bytes(b"")
        return super().start(ready=ready, timeout=90)

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
    web.start(lambda: answers_on(port))
    web.url = f"http://127.0.0.1:{port}"
    return web
