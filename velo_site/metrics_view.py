"""GET /metrics: django-prometheus' django_* families and Velo's velo_* families in one exposition.

In multiprocess mode (several gunicorn workers, PROMETHEUS_MULTIPROC_DIR set)
the django_* samples of every worker are merged by prometheus_client's
MultiProcessCollector; the velo_* values come from the database either way, so
every worker answers the same.
"""

import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from dlq.metrics import VeloCollector


class _Everything:
    """The process's default registry (django_*, python_*, process_*) as one collector."""

    def collect(self):
        return REGISTRY.collect()


def _registry():
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Everything())
    registry.register(VeloCollector())
    return registry


def _authorised(request):
    token = settings.VELO_METRICS_TOKEN
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_GET
def metrics(request):
    if not _authorised(request):
        response = HttpResponse("a bearer token is needed for /metrics\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
