"""The Celery application: configured from Django settings, tasks found in the apps."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "velo_site.settings")

app = Celery("velo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_connections(**kwargs):
    """As Django does around a request: close connections past CONN_MAX_AGE or broken,
    and health-check the rest before their next query (CONN_HEALTH_CHECKS)."""
    from django.db import close_old_connections

    close_old_connections()


@signals.task_failure.connect
def _drop_connections(**kwargs):
    """A task that raised may have left a connection mid-query: never reuse it."""
    from django.db import connections

    connections.close_all()
