"""The Celery application: configured from Django settings, tasks found in the apps."""

import os

from celery import Celery, signals
from django.db import close_old_connections, connections

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
