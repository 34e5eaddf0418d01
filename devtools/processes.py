"""Child processes for tests and benchmarks: each in a session of its own, its output
in a log file, waited for with a bound, and always stopped."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class WaitTimedOut(AssertionError):
    """A bounded wait ran out; an AssertionError, so a test reports it as a failure."""


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    """Poll until `predicate()` is truthy and return its value; WaitTimedOut after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise WaitTimedOut(f"timed out after {timeout}s waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_on(port):
    """Whether something accepts connections on the loopback port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class ChildProcess:
    def __init__(self, name, argv, env, log_path):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = Path(log_path)
        self.proc = None

    def start(self, ready=None, timeout=90.0):
        """Start it; with `ready`, wait until that is true (RuntimeError if it exits first)."""
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the handle
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if ready is not None:
            self.wait_until(
                lambda: self.proc.poll() is not None or ready(), timeout, f"{self.name} to start"
            )
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
        return self

    def wait_until(self, condition, timeout, what):
        """wait_for `condition`; a child that never gets there is stopped, not left running
        after its test (a fixture that fails before its yield never reaches its teardown)."""
        try:
            wait_for(condition, timeout=timeout, what=what)
        except BaseException:
            self.stop(grace=5.0)
            raise

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self):
        """SIGKILL the whole process group: no chance to clean up, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, grace=20.0):
        """SIGTERM the process group; SIGKILL it if it is still there after `grace` seconds."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
