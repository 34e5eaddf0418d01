"""Time limits on records as they run: a soft limit raised in the running process, and the
progress a watchdog outside it reads to enforce the hard limit.

Soft limit: a SIGALRM timer raises RecordTimeout (or BatchTimeout) in the processor's
code. It stops `time.sleep`, blocking socket reads and pure Python, and Python's `re`
too (it checks for signals as it backtracks). Signals reach only the main thread, so
it works where records run on it (Celery's prefork and solo pools, a management
command) and is skipped elsewhere (the threads pool, a web request thread), where a
record is checked only once it returns. The timer is armed once per run and re-armed
only when it fires, so a record costs a clock read, not two system calls. A requeue, whose
runs are one entry each, installs the handler once for all of them (shared_alarm).

Hard limit: code that never returns to the interpreter (a C extension, or a processor
that swallows the soft limit) can only be stopped from outside. Each pool process
writes the record it runs (batch, claim, index, start) into a small memory-mapped
file of its own, in a directory the worker's watchdog (dlq.engine.watchdog) creates;
the watchdog kills a process whose record is past its limit plus a grace.
"""

import contextlib
import mmap
import os
import signal
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RECORD_TIMEOUT = "RecordTimeout"
BATCH_TIMEOUT = "BatchTimeout"

# batch id, claim token, record index (-1: none running), started (CLOCK_MONOTONIC, which
# every process of the host shares), record_timeout.
SLOT = struct.Struct("<q32sqdd")
IDLE = -1
# Per record only the index and its start change: packed alone, after batch id and token.
_RECORD = struct.Struct("<qd")
_RECORD_AT = struct.calcsize("<q32s")


class RecordTimeout(Exception):
    """A record ran longer than its job's record_timeout."""


class BatchTimeout(Exception):
    """An attempt at a batch ran longer than its job's batch_timeout."""


def record_timeout_message(seconds, how="interrupted"):
    return f"Record took longer than {seconds:g} s (record_timeout); {how}"


def watchdog_dir(parent_pid):
    """Where the pool processes of the worker `parent_pid` write their progress."""
    return Path(tempfile.gettempdir()) / f"velo-watchdog-{parent_pid}"


class Progress:
    """This process's slot in its worker's watchdog directory (none when there is no watchdog)."""

    _for_pid = None
    _instance = None

    def __init__(self, path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, SLOT.size)
            self._map = mmap.mmap(fd, SLOT.size)
        finally:
            os.close(fd)
        self.idle()

    @classmethod
    def of_this_process(cls):
        """This process's slot, opened once (again after a fork), or None without a watchdog."""
        pid = os.getpid()
        if cls._for_pid != pid:
            directory = watchdog_dir(os.getppid())
            cls._instance = cls(directory / str(pid)) if directory.is_dir() else None
            cls._for_pid = pid
        return cls._instance

    def begin(self, batch_id, token, timeout):
        SLOT.pack_into(self._map, 0, batch_id, token.encode(), IDLE, 0.0, timeout)

    def record(self, index, started):
        _RECORD.pack_into(self._map, _RECORD_AT, index, started)

    def idle(self):
        SLOT.pack_into(self._map, 0, 0, b"", IDLE, 0.0, 0.0)


def read_slot(path):
    """(batch_id, token, index, started, timeout) of a progress file, or None if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if len(data) != SLOT.size:
        return None
    batch_id, token, index, started, timeout = SLOT.unpack(data)
    return batch_id, token.rstrip(b"\0").decode(), index, started, timeout


@dataclass
class TimeLimits:
    """The limits a run of records keeps: per record, per attempt (a monotonic deadline),
    and records the watchdog already stopped ({index: seconds}), failed without running."""

    record_timeout: float | None = None
    deadline: float | None = None
    timed_out: dict = field(default_factory=dict)
    batch_id: int = 0
    token: str = ""  # the batch claim's token; empty: no watchdog progress (requeues)

    def __post_init__(self):
        self._started = None
        self._fired = False
        self._progress = None
        self._old_handler = None
        self._armed = False

    # -- around a run --------------------------------------------------------

    def __enter__(self):
        if self.token:
            self._progress = Progress.of_this_process()
            if self._progress is not None:
                self._progress.begin(self.batch_id, self.token, self.record_timeout or 0.0)
        if self.record_timeout and _shared is not None:
            _shared.limits = self
            self._armed = True
            self._arm(self.record_timeout)
        elif self.record_timeout and _can_signal():
            self._old_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            self._armed = True
            self._arm(self.record_timeout)
        return self

    def __exit__(self, *exc):
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if _shared is not None and _shared.limits is self:
                _shared.limits = None
            else:
                signal.signal(signal.SIGALRM, self._old_handler)
            self._armed = False
        if self._progress is not None:
            self._progress.idle()

    def out_of_time(self):
        """The attempt's deadline has passed: the records not reached are left for later."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    # -- around each record --------------------------------------------------

    def enter(self, index):
        self._fired = False
        self._started = time.monotonic()
        if self._progress is not None:
            self._progress.record(index, self._started)

    def check(self):
        """After the record returned: over its limit all the same (it swallowed the soft
        limit, or nothing could interrupt it) fails it."""
        if self.record_timeout and time.monotonic() - self._started > self.record_timeout:
            raise RecordTimeout(record_timeout_message(self.record_timeout, "it returned too late"))

    def leave(self):
        self._started = None
        if self._progress is not None:
            self._progress.record(IDLE, 0.0)

    # -- the soft limit ------------------------------------------------------

    def _arm(self, seconds):
        if self.deadline is not None and self.deadline > time.monotonic():
            seconds = min(seconds, self.deadline - time.monotonic())
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))

    def _on_alarm(self, signum, frame):
        now = time.monotonic()
        started = self._started
        if started is None or self._fired:
            self._arm(self.record_timeout)  # between records: look again a record's time later
            return
        if self.deadline is not None and now >= self.deadline:
            self._fired = True
            self._arm(self.record_timeout)
            raise BatchTimeout("Batch attempt took longer than its batch_timeout; record left")
        if now - started >= self.record_timeout:
            self._fired = True
            self._arm(self.record_timeout)
            raise RecordTimeout(record_timeout_message(self.record_timeout))
        self._arm(started + self.record_timeout - now)


class _SharedAlarm:
    """The SIGALRM handler of a shared_alarm() block: each alarm goes to the limits armed."""

    limits = None

    def on_alarm(self, signum, frame):
        if self.limits is not None:
            self.limits._on_alarm(signum, frame)


_shared = None  # the shared_alarm() block the main thread is in


@contextlib.contextmanager
def shared_alarm():
    """TimeLimits entered one after another in this block share one SIGALRM handler,
    installed here once: a requeue runs each entry under limits of its own, and installing
    and restoring a handler for each took longer than most records run."""
    global _shared
    if _shared is not None or not _can_signal():
        yield
        return
    shared = _SharedAlarm()
    old_handler = signal.signal(signal.SIGALRM, shared.on_alarm)
    _shared = shared
    try:
        yield
    finally:
        _shared = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)


def _can_signal():
    """A SIGALRM handler may be ours: on the main thread, and nobody else's alarm (the
    default, or what a pool process puts there: a handler that only ends the process)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return signal.getsignal(signal.SIGALRM) in _FREE_ALARM_HANDLERS


def _free_alarm_handlers():
    handlers = [signal.SIG_DFL, signal.SIG_IGN, None]
    try:
        from billiard.common import _shutdown_cleanup  # prefork pool processes' SIGALRM
    except ImportError:
        pass
    else:
        handlers.append(_shutdown_cleanup)
    return tuple(handlers)


_FREE_ALARM_HANDLERS = _free_alarm_handlers()
