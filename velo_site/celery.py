"""The Celery application: configured from Django settings, tasks found in the apps."""

import os

from celery import Celery, bootsteps, signals
from django.db import close_old_connections, connections

from common import workers

from .watchdog import RecordWatchdog

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "velo_site.settings")

app = Celery("velo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["worker"].add(RecordWatchdog)  # the hard time limit on records (prefork only)


def _eager(task):
    """Run in the caller's process and transaction: its connections are not ours to close."""
    return getattr(getattr(task, "request", None), "is_eager", False)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_connections(sender=None, **kwargs):
    """As Django does around a request: close connections past CONN_MAX_AGE or broken,
    and health-check the rest before their next query (CONN_HEALTH_CHECKS)."""
    if not _eager(sender):
        close_old_connections()


@signals.task_failure.connect
def _drop_connections(sender=None, **kwargs):
    """A task that raised may have left a connection mid-query: never reuse it."""
    if not _eager(sender):
        connections.close_all()


class WorkerLiveness(bootsteps.StartStopStep):
    """The worker's heartbeat row (dlq.liveness), kept by the parent process.

    The parent runs no records (prefork), so a record that holds the GIL cannot
    starve it. The identity is made before the pool forks, so every pool
    process's claims name this instance; the row is written once the pool has
    started (its pids known) and before the consumer takes any task.
    """

    requires = ("celery.worker.components:Pool",)

    def __init__(self, w, **kwargs):
        super().__init__(w, **kwargs)
        self.identity = workers.start(w.hostname)
        self.beater = None

    def start(self, w):
        from dlq import liveness

        queues = ",".join(sorted(q.name for q in w.app.amqp.queues.consume_from.values()))
        liveness.register(self.identity, pool_pids=_pool_pids(w), queues=queues)
        connections.close_all()  # pool processes forked later must not share it
        self.beater = liveness.Beater(self.identity, lambda: _pool_pids(w)).start()
        _stopping.append(self)

    def stop(self, w):
        # Beats go on while the pool finishes its tasks (a warm shutdown);
        # the row is marked stopped at worker_shutdown, once they are done.
        pass

    def shutdown(self):
        from dlq import liveness

        if self.beater is not None:
            self.beater.stop()
            liveness.mark_stopped(self.identity.boot_id)
            connections.close_all()
            self.beater = None


_stopping = []


def _pool_pids(w):
    """The live pool processes: prefork's children, or this process (threads, solo)."""
    processes = getattr(getattr(w.pool, "_pool", None), "_pool", None)
    if processes is None:
        return [os.getpid()]
    # billiard drops a dead child from this list within a second or so; polling it
    # here (exitcode) would reap it behind billiard's back.
    return [p.pid for p in list(processes) if p.pid]


@signals.worker_shutdown.connect
def _mark_stopped(sender=None, **kwargs):
    while _stopping:
        _stopping.pop().shutdown()


app.steps["worker"].add(WorkerLiveness)
