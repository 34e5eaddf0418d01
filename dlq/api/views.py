"""API views (placeholder until the ingest API lands)."""

from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .middleware import error_response


@csrf_exempt
@require_POST
def submit_batch(request, job_name):
    return error_response(501, "not implemented yet")


@require_GET
def batch_status(request, batch_id):
    return error_response(501, "not implemented yet")
