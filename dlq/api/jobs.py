"""A job's operational switches: POST /api/v1/jobs/<job>/pause and /resume.

Pausing stops a job's processing, so a token that may only submit must not do
it: only a can_requeue token (an operator's), and only for its own jobs. The
pause itself, its checks and its audit row are dlq.pause's.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import pause
from ..actors import Actor
from .auth import job_for, require_token
from .body import loads_json, read_body
from .params import reject_unknown
from .responses import ApiError, json_errors


@csrf_exempt
@require_POST
@json_errors
def pause_job(request, job_name):
    """200 {"job", "paused": true, "changed", "waiting"}; an empty body or {}."""
    token, job = _operator_job(request, job_name)
    _body(request, ())
    changed = pause.pause(job, Actor.api(token))
    return _state(job, changed)


@csrf_exempt
@require_POST
@json_errors
def resume_job(request, job_name):
    """200 {"job", "paused": false, "changed", "waiting", "rate"}; the body may give "rate",
    batches a second the batches that waited are sent at (absent or null: no limit)."""
    token, job = _operator_job(request, job_name)
    rate = _body(request, ("rate",)).get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise ApiError(400, "rate must be a number of batches a second, or null")
    try:
        changed = pause.resume(job, Actor.api(token), rate)
    except pause.InvalidRate as exc:
        raise ApiError(400, str(exc), {"rate": rate}) from exc
    return _state(job, changed)


def _operator_job(request, job_name):
    """Checked in this order, each failing closed: a live token (401), one that may act as
    an operator (403), on a job it may use (404 or 403)."""
    token = require_token(request)
    if not token.can_requeue:
        raise ApiError(403, "this API token may not pause or resume jobs", {"can_requeue": False})
    return token, job_for(token, job_name)


def _body(request, keys):
    text = read_body(request)
    if not text.strip():
        return {}
    data = loads_json(text, where="the body")
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    reject_unknown(data, keys, what="key")
    return data


def _state(job, changed):
    job.refresh_from_db(fields=["paused_at", "release_started_at", "release_rate"])
    waiting = pause.waiting_batches([job]).get(job.pk, 0)
    return JsonResponse(
        {
            "job": job.name,
            "paused": job.paused_at is not None,
            "changed": changed,
            "waiting": waiting,
            "rate": job.release_rate,
        }
    )
