"""Throwaway copies of PostgreSQL and Redis on free ports, for tests that must kill them.

The shared services on 5432 and 6379 are never touched: a test that takes the
database or the broker down starts its own copy here, kills and restarts it as
it likes, and removes it afterwards. PostgreSQL refuses to run as root, so as
root (CI) the cluster is owned by and run as the `postgres` user.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .processes import answers_on, free_port, wait_for

PG_USER = "postgres"


def _pg_bin(name):
    """A PostgreSQL server binary: on PATH, or under Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in versions:
        if (directory / name).exists():
            return str(directory / name)
    return None


def postgres_available():
    """Why a scratch cluster cannot be made here, or "" when it can."""
    if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
        return "needs PostgreSQL's initdb and pg_ctl"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return "running as root needs a 'postgres' user to own the cluster"
    return ""


class ScratchPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, on a free loopback port."""

    def __init__(self, dbname="velo"):
        self.port = free_port()
        self.dbname = dbname
        self.root = Path(tempfile.mkdtemp(prefix="velo-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.url = f"postgres://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *argv, check=True):
        argv = list(argv)
        if os.geteuid() == 0:
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=120)

    def start(self):
        """initdb (first time), start, and create the database; returns self."""
        if not self.data.exists():
            if os.geteuid() == 0:
                entry = pwd.getpwnam(PG_USER)
                os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._run(
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            )
            self._up()
            self._run(
                _pg_bin("createdb") or "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                self.dbname,
            )
        else:
            self._up()
        return self

    def _up(self):
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )
        wait_for(lambda: answers_on(self.port), timeout=60, what="the scratch PostgreSQL")

    def stop(self, mode="fast"):
        """Stop the server: `fast` (clean) or `immediate` (as a crash: recovery on start)."""
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "stop",
            check=False,
        )

    def restart(self, mode="immediate"):
        self.stop(mode)
        self._up()

    def remove(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""


class ScratchRedis:
    """A redis-server of its own on a free loopback port, no persistence."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: answers_on(self.port), timeout=30, what="the scratch Redis")
        return self

    def stop(self):
        """SIGKILL it: a broker that vanishes, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @staticmethod
    def available():
        return "" if shutil.which("redis-server") else "needs the redis-server binary"
