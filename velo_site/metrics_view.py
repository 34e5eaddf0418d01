"""GET and HEAD /metrics: django-prometheus' django_* and Velo's velo_* families in one exposition.

In multiprocess mode (several gunicorn workers, PROMETHEUS_MULTIPROC_DIR set)
the django_* samples of every worker are merged by prometheus_client's
MultiProcessCollector; the velo_* values come from the database either way, so
every worker answers the same.
"""

import hmac
import logging
import os

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from dlq.api.auth import bearer_token
from dlq.metrics import VeloCollector

log = logging.getLogger(__name__)


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
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


# GET and HEAD (a scraper's or a load balancer's probe); anything else is a 405.
# GET and HEAD only: a write is a 405, not the CSRF check's 403 (scrapers send no cookie).
@csrf_exempt
@require_safe
def metrics(request):
    if not _authorised(request):
        response = HttpResponse("a bearer token is needed for /metrics\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        exposition = generate_latest(_registry())
    except DatabaseError as exc:
        # A partial exposition would make the velo_* series vanish as if they
        # had ended; a failed scrape (up == 0) says what happened.
        log.error("/metrics: the database could not be read: %r", exc)
        return HttpResponse("velo_* metrics unavailable: database error\n", status=503)
    # The classic text format (what generate_latest writes), declared as such:
    # every Prometheus version and promtool read it.
    return HttpResponse(exposition, content_type=CONTENT_TYPE_PLAIN_0_0_4)
