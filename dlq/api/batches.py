"""Batches: POST /api/v1/jobs/<job>/batches submits records; GET /api/v1/batches/<id> follows one.

The API authenticates with bearer tokens, never cookies, so CSRF does not
apply: every view is csrf_exempt, which also lets a wrong method reach
require_http_methods and get its JSON 405 instead of a CSRF 403.
"""

from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .. import ingest
from ..ingest.records import InvalidRecords, validate_idempotency_key
from ..models import Batch
from .auth import job_for, require_job_access, require_token, unknown
from .body import parse_records, read_body
from .responses import ApiError, json_errors
from .shapes import iso_utc

MAX_IDEMPOTENCY_KEY = Batch._meta.get_field("idempotency_key").max_length

# What the status answer reads: never the records, which can be megabytes.
BATCH_FIELDS = (
    "id",
    "job",
    "status",
    "record_count",
    "processed",
    "failed",
    "dlq_added",
    "dlq_rejected",
    "attempts",
    "created_at",
    "finished_at",
)


@csrf_exempt
@require_POST
@json_errors
def submit_batch(request, job_name):
    """POST /api/v1/jobs/<job>/batches: store the records as a batch and queue it.

    Answers 202 {"batch_id", "records", "status_url"}; the same Idempotency-Key
    with the same records answers the same 202 for the batch it made first,
    which is stored once. Refusals, each storing nothing: 400 (body not
    JSON/NDJSON, not a list of JSON objects, bad Idempotency-Key), 401 (no
    valid token), 403 (token not allowed on the job; for a token limited to
    jobs also an unknown job), 404 (unknown job), 409 (job disabled: its
    batches would never run, so they are refused rather than queued), 411 (a
    chunked body, which Django under WSGI cannot read), 413 (body or batch
    over the limits), 422 (an Idempotency-Key already used with other records).
    """
    token = require_token(request)
    job = job_for(token, job_name)
    if not job.enabled:
        raise ApiError(409, f"job {job.name!r} is disabled", {"job": job.name})
    key = _idempotency_key(request)
    records = parse_records(read_body(request), request.content_type or "")
    try:
        batch, created = ingest.submit_batch(
            job, records, idempotency_key=key, submitted_by=token.name
        )
    except InvalidRecords as exc:
        raise ApiError(exc.status, str(exc), exc.detail) from exc
    status_url = request.build_absolute_uri(reverse("api-batch-status", args=[batch.pk]))
    response = JsonResponse(
        {"batch_id": batch.pk, "records": batch.record_count, "status_url": status_url},
        status=202,
    )
    response["Location"] = status_url
    if not created:
        response["Idempotent-Replayed"] = "true"
    return response


@csrf_exempt
@require_GET
@json_errors
def batch_status(request, batch_id):
    """GET /api/v1/batches/<id>: a batch's status and counts (401/403 as for submitting;
    404 for an unknown id, which a token limited to jobs gets as the 403)."""
    token = require_token(request)
    batch = (
        Batch.objects.select_related("job")
        .only(*BATCH_FIELDS, "job__name")
        .filter(pk=batch_id)
        .first()
    )
    if batch is None:
        raise unknown(token, ApiError(404, f"no batch {batch_id}", {"batch_id": batch_id}))
    require_job_access(token, batch.job)
    return JsonResponse(
        {
            "id": batch.pk,
            "job": batch.job.name,
            "status": batch.status,
            "records": batch.record_count,
            "processed": batch.processed,
            "failed": batch.failed,
            "dlq_added": batch.dlq_added,
            "dlq_rejected": batch.dlq_rejected,
            "attempts": batch.attempts,
            "created_at": iso_utc(batch.created_at),
            "finished_at": iso_utc(batch.finished_at),
        }
    )


def _idempotency_key(request):
    key = request.headers.get("Idempotency-Key")
    if key is None or not key.strip():
        return None
    key = key.strip()
    try:
        validate_idempotency_key(key, MAX_IDEMPOTENCY_KEY)
    except InvalidRecords as exc:
        raise ApiError(exc.status, str(exc), exc.detail) from exc
    return key
