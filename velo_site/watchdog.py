"""The worker bootstep that runs the record watchdog (dlq.engine.watchdog) in a prefork worker.

Registered on the Celery app in velo_site.celery. It runs in the worker's parent
process, which runs no records: a record holding the GIL in a pool process cannot
starve it. Other pools (threads, solo) have no processes to kill: there the step
does nothing, and only the soft limit (where signals reach) and the checks between
records apply (README, "Time limits").
"""

import logging
import os
import shutil
import threading

from celery import bootsteps
from django.conf import settings
from django.db import connection

from dlq.processors.limits import watchdog_dir

log = logging.getLogger(__name__)


class RecordWatchdog(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        self.thread = None
        self.stopping = threading.Event()
        self.directory = None

    def create(self, worker):
        return self

    def start(self, worker):
        from celery.concurrency.prefork import TaskPool

        if not isinstance(worker.pool, TaskPool):
            log.info("record watchdog off: the %s pool has no processes to stop", worker.pool_cls)
            return
        self.directory = watchdog_dir(os.getpid())
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.thread = threading.Thread(target=self._run, name="velo-record-watchdog", daemon=True)
        self.thread.start()
        log.info("record watchdog on: %s", self.directory)

    def stop(self, worker):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self):
        from dlq.engine import watchdog  # models: only once Django is set up

        while not self.stopping.wait(settings.VELO_WATCHDOG_INTERVAL_SECONDS):
            try:
                if watchdog.enforce(self.directory, settings.VELO_RECORD_TIMEOUT_GRACE_SECONDS):
                    connection.close()  # used once in a long while: do not hold it open
            except Exception:  # the watchdog must outlive any one bad look
                log.exception("record watchdog: look failed")
                connection.close()
