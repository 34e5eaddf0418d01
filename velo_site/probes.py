"""/live, /ready and /health: open to probes, JSON, honest status codes."""

import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import PROCESS_COLLECTOR

from dlq.health import CRITICAL, WARNING, all_jobs_health

from .checks import run_checks

log = logging.getLogger(__name__)


def _process_start():
    """When this process started (Linux /proc, read by prometheus_client), else now.

    Not this module's import time: gunicorn loads the URLs, and so this module,
    at a worker's first request, which may come long after the worker started.
    """
    for family in PROCESS_COLLECTOR.collect():
        if family.name == "process_start_time_seconds":
            return family.samples[0].value
    return time.time()


STARTED = _process_start()

# The probes only answer GET, which CSRF never checks; exempt, any other method
# (QUERY, say, which CSRF treats as unsafe) reaches require_GET and gets its 405
# with Allow instead of a CSRF 403 page.


@csrf_exempt
@require_GET
def live(request):
    """The process answers: touches no database and no broker."""
    return JsonResponse({"live": True})


@csrf_exempt
@require_GET
def ready(request):
    checks = run_checks()
    is_ready = all(check.ready for check in checks)
    return JsonResponse(
        {"ready": is_ready, "checks": [check.as_json() for check in checks]},
        status=200 if is_ready else 503,
    )


@csrf_exempt
@require_GET
def health(request):
    """healthy; degraded when a DLQ is WARNING or CRITICAL; unhealthy (503) when a check fails."""
    checks = run_checks()
    # With the broker down the DLQ is still worth showing; with the database down it cannot be.
    dlq = _dlq_health() if _ready(checks, "database") else None
    if dlq is None or not all(check.ready for check in checks):
        status = "unhealthy"
    elif any(summary["status"] in (WARNING, CRITICAL) for summary in dlq):
        status = "degraded"
    else:
        status = "healthy"
    return JsonResponse(
        {
            "status": status,
            "version": settings.VELO_DEPLOYMENT.version,
            "uptime_seconds": round(max(0.0, time.time() - STARTED), 3),
            "checks": [check.as_json() for check in checks],
            "dlq": dlq or [],
        },
        status=503 if status == "unhealthy" else 200,
    )


def _ready(checks, name):
    return next(check.ready for check in checks if check.name == name)


def _dlq_health():
    """Every job's DLQ health, or None when the database fails after its check passed."""
    try:
        return [summary.as_json() for summary in all_jobs_health()]
    except DatabaseError as exc:
        log.warning("/health could not read the DLQ health: %r", exc)
        return None
