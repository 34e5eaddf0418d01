"""/live, /ready and /health (SPEC §6): open to probes, JSON, honest status codes."""

import time

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from dlq.health import CRITICAL, WARNING, all_jobs_health

from .checks import run_checks

STARTED = time.monotonic()


@require_GET
def live(request):
    """The process answers: touches no database and no broker."""
    return JsonResponse({"live": True})


@require_GET
def ready(request):
    checks = run_checks()
    is_ready = all(check.ready for check in checks)
    return JsonResponse(
        {"ready": is_ready, "checks": [check.as_json() for check in checks]},
        status=200 if is_ready else 503,
    )


@require_GET
def health(request):
    """healthy; degraded when a DLQ is WARNING or CRITICAL; unhealthy (503) when a check fails."""
    checks = run_checks()
    dlq = []
    if all(check.ready for check in checks):
        dlq = [summary.as_json() for summary in all_jobs_health()]
        degraded = any(summary["status"] in (WARNING, CRITICAL) for summary in dlq)
        status = "degraded" if degraded else "healthy"
    else:
        status = "unhealthy"
    return JsonResponse(
        {
            "status": status,
            "version": settings.VELO_DEPLOYMENT.version,
            "uptime_seconds": round(time.monotonic() - STARTED, 3),
            "checks": [check.as_json() for check in checks],
            "dlq": dlq,
        },
        status=503 if status == "unhealthy" else 200,
    )
