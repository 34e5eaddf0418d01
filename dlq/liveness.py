"""Worker liveness: which worker instances are alive, so a dead one's work is handed out in seconds.

Every Celery worker's parent process (velo_site.celery's bootstep) keeps a
WorkerInstance row: it beats every VELO_WORKER_HEARTBEAT_SECONDS with the pids
of its live pool processes. A claim (a batch, a requeue run, a regroup run)
records the instance and pool pid holding it. Recovery in the beat tick asks
`lost_claims` which claims lost their holder:

- the instance is marked dead: it stopped, or a worker of the same node name
  started after it (its successor after a crash or a restart);
- its beats stopped for VELO_WORKER_STALE_SECONDS while another instance kept
  beating without a break all that time (a witness): after a database outage
  every beat is old at once, and that alone proves no worker dead;
- it beats, but the pool process holding the claim is no longer among its
  pool processes, at a beat taken after the claim (a SIGKILLed pool child);
- the claim names an instance with no row, claimed more than the stale time
  ago (a row purged long after its worker died).

A claim without a holder (made in the web or the shell) is recovered by its
lease alone. Handing a claim out again never breaks exactly-once: the claim's
token stops the old holder from committing anything.
"""

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from common import workers

from .models import WorkerInstance

log = logging.getLogger(__name__)

# Instance rows are kept this long after their last beat (for the admin and for
# claims still naming them), then purged.
KEEP_INSTANCES = timedelta(days=1)


# What recovery reads of a claimed row, after its pk: see lost_claims.
HOLDER_FIELDS = ("worker", "worker_pid", "claimed_at")


def claim_fields(now):
    """What a claim made in this process records of its holder."""
    identity = workers.current()
    if identity is None:
        return {"worker": "", "worker_pid": None, "claimed_at": now}
    return {"worker": identity.boot_id, "worker_pid": os.getpid(), "claimed_at": now}


def _stale_seconds():
    return timedelta(seconds=settings.VELO_WORKER_STALE_SECONDS)


# --- the worker's side -------------------------------------------------------


def register(identity, *, pool_pids, queues="", now=None):
    """Record a worker's start; its predecessors of the same node name are dead from now."""
    now = now or timezone.now()
    hostname = socket.gethostname()
    with transaction.atomic():
        for row in WorkerInstance.objects.filter(
            node_name=identity.node_name, dead_at__isnull=True
        ).exclude(boot_id=identity.boot_id):
            if row.hostname == hostname and (
                row.pid == identity.pid or not workers.running(row.pid)
            ):
                _mark_dead(row.boot_id, now, f"succeeded by pid {identity.pid}")
                log.warning(
                    "worker %s (pid %s) is dead: its claims are handed out again",
                    row.node_name,
                    row.pid,
                )
            else:  # two live workers with one name, or another host: beats will tell
                log.warning(
                    "another worker named %s (pid %s on %s) may be alive; give each worker "
                    "its own -n",
                    row.node_name,
                    row.pid,
                    row.hostname,
                )
        WorkerInstance.objects.create(
            boot_id=identity.boot_id,
            node_name=identity.node_name,
            hostname=hostname,
            pid=identity.pid,
            pool_pids=sorted(pool_pids),
            queues=queues[:500],
            started_at=now,
            last_seen=now,
            up_since=now,
        )


def beat(boot_id, pool_pids, *, up_since, now=None):
    """One heartbeat; False when the instance has been marked dead meanwhile."""
    now = now or timezone.now()
    WorkerInstance.objects.filter(boot_id=boot_id).update(
        last_seen=now, pool_pids=sorted(pool_pids), up_since=up_since
    )
    return not WorkerInstance.objects.filter(boot_id=boot_id, dead_at__isnull=False).exists()


def mark_stopped(boot_id, now=None):
    """A worker that stopped cleanly: nothing it held is left; its row says it is gone."""
    _mark_dead(boot_id, now or timezone.now(), "stopped")


def _mark_dead(boot_id, now, reason):
    WorkerInstance.objects.filter(boot_id=boot_id, dead_at__isnull=True).update(
        dead_at=now, dead_reason=reason[:200]
    )


class Beater:
    """The parent process's heartbeat thread, on a database connection of its own.

    `pool_pids()` lists the live pool processes at each beat. A beat that comes
    more than half the stale time after the last one that succeeded (the
    database was away) starts a new unbroken run: `up_since` moves to now, so
    this instance witnesses others' silence only once it has been heard all
    along.
    """

    def __init__(self, identity, pool_pids):
        self.identity, self.pool_pids = identity, pool_pids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="velo-worker-beat", daemon=True)
        self.up_since = timezone.now()
        self._last_ok = time.monotonic()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        try:
            while not self._stop.wait(settings.VELO_WORKER_HEARTBEAT_SECONDS):
                self.beat_once()
        finally:
            connection.close()

    def beat_once(self):
        now, mono = timezone.now(), time.monotonic()
        if mono - self._last_ok > settings.VELO_WORKER_STALE_SECONDS / 2:
            self.up_since = now
        try:
            alive = beat(self.identity.boot_id, self.pool_pids(), up_since=self.up_since, now=now)
        except DatabaseError as exc:
            log.warning("worker heartbeat failed: %s", exc)
            connection.close()
            return
        self._last_ok = mono
        if not alive:
            log.error(
                "worker %s was declared dead (another worker took its name?): the work it "
                "holds has been handed out again",
                self.identity.node_name,
            )


# --- recovery's side ---------------------------------------------------------


class Judge:
    """Whose claims have lost their holder, as the database knows it at `now` (one tick's view)."""

    def __init__(self, now, boot_ids):
        self.now = now
        self.stale = now - _stale_seconds()
        self.rows = {
            row.boot_id: row
            for row in WorkerInstance.objects.filter(boot_id__in=set(boot_ids) - {""}).only(
                "boot_id", "pool_pids", "last_seen", "dead_at"
            )
        }
        self._witnessed = None

    def witnessed(self):
        """Some instance has beaten without a break for the whole stale time, up to now."""
        if self._witnessed is None:
            self._witnessed = WorkerInstance.objects.filter(
                dead_at__isnull=True, last_seen__gte=self.stale, up_since__lte=self.stale
            ).exists()
        return self._witnessed

    def lost(self, worker, pid, claimed_at):
        """Why a claim held by (worker, pid) since `claimed_at` lost its holder, or None."""
        if not worker:
            return None
        row = self.rows.get(worker)
        if row is None:
            old = claimed_at is None or claimed_at < self.stale
            return "its worker is gone" if old else None
        if row.dead_at is not None:
            return "its worker died or stopped"
        if row.last_seen < self.stale:
            return "its worker stopped beating" if self.witnessed() else None
        if pid not in row.pool_pids and claimed_at is not None and claimed_at < row.last_seen:
            return "its pool process died"
        return None


def lost_claims(claims, now):
    """{pk: reason} for the claims, given as (pk, worker, worker_pid, claimed_at), whose
    holder is gone."""
    claims = list(claims)
    if not claims:
        return {}
    judge = Judge(now, {worker for _, worker, _, _ in claims})
    lost = {}
    for pk, worker, pid, claimed_at in claims:
        reason = judge.lost(worker, pid, claimed_at)
        if reason:
            lost[pk] = reason
    return lost


def purge_instances(now=None):
    """Instance rows not heard from for a day go."""
    now = now or timezone.now()
    deleted, _ = WorkerInstance.objects.filter(last_seen__lt=now - KEEP_INSTANCES).delete()
    return deleted
