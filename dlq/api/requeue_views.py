"""POST /api/v1/dlq/requeue starts a requeue run; GET /api/v1/requeue-runs/<id> follows it.

The run itself is dlq.requeue's: this module only checks the body and the
token, and cuts a filter at the newest entry id of the moment, so entries
that fail after the request are not swept into the run.
"""

import json
import math

from django.core.validators import slug_re
from django.db.models import Max
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from errors.models import ErrorGroup

from .. import requeue
from ..models import Batch, DLQEntry, Job, RequeueRun
from . import shapes
from .auth import require_token
from .body import read_body
from .errors import ApiError, json_errors
from .params import as_id
from .scope import allowed_jobs, job_for

MAX_IDS = 10_000
FILTER_KEYS = requeue.FILTER_KEYS  # job, error_group, batch
OPTION_KEYS = ("rate_limit", "dry_run", "canary_size", "canary_max_failure_ratio")
# `status` is accepted for the §6 wording ("by filter (job, error group,
# status)"), but only pending entries are ever requeued.
KEYS = ("ids", *FILTER_KEYS, "status", *OPTION_KEYS)


@csrf_exempt
@require_POST
@json_errors
def start_requeue(request):
    """202 {"run_id", "total", "status_url"}.

    Refusals, each starting nothing: 400 (body not a JSON object, unknown
    keys, bad values, neither ids nor a filter), 401, 403 (token without
    can_requeue, or limited to jobs and reaching beyond them), 404 (unknown
    job, error group or batch in the filter), 413 (more than MAX_IDS ids or a
    body over VELO_MAX_BODY_BYTES).
    """
    token = require_token(request)
    if not token.can_requeue:
        raise ApiError(403, "this API token may not start requeues", {"can_requeue": False})
    body = _json_object(read_body(request))
    options = _options(body)
    scope = allowed_jobs(token)
    if "ids" in body:
        if any(key in body for key in FILTER_KEYS):
            raise ApiError(400, "give either ids or a filter (job, error_group, batch), not both")
        ids = _ids(body["ids"])
        _check_ids_in_scope(ids, scope)
        kwargs = {"entry_ids": ids}
    else:
        kwargs = {"filters": _filters(body, token, scope), "max_id": _newest_entry_id()}
    try:
        run = requeue.start_run(created_by=f"api:{token.name}", via="api", **kwargs, **options)
    except requeue.InvalidRequeue as exc:
        raise ApiError(400, str(exc)) from exc
    status_url = request.build_absolute_uri(reverse("api-requeue-run", args=[run.pk]))
    response = JsonResponse(
        {"run_id": run.pk, "total": run.total, "status_url": status_url}, status=202
    )
    response["Location"] = status_url
    return response


@csrf_exempt
@require_GET
@json_errors
def run_status(request, run_id):
    """A run's progress; 404 unknown, 403 when the run reaches jobs the token may not use."""
    token = require_token(request)
    run = RequeueRun.objects.filter(pk=run_id).first()
    if run is None:
        raise ApiError(404, f"no requeue run {run_id}", {"run_id": run_id})
    scope = allowed_jobs(token)
    if scope is not None and not _run_in_scope(run, scope):
        raise ApiError(
            403, "this API token may not read a run over jobs it may not use", {"run_id": run_id}
        )
    return JsonResponse(shapes.requeue_run(run))


def _json_object(body):
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN/Infinity
        raise ApiError(400, "the body is not valid JSON", {"message": str(exc)}) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            'the body must be a JSON object: {"ids": [...]} or a filter '
            '{"job", "error_group", "batch"}',
        )
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ApiError(
            400,
            f"unknown key {unknown[0][:100]!r}",
            {"unknown": [key[:100] for key in unknown[:20]], "allowed": list(KEYS)},
        )
    if data.get("status") not in (None, DLQEntry.Status.PENDING):
        raise ApiError(
            400, "only pending entries are requeued", {"status": str(data["status"])[:100]}
        )
    return data


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _options(body):
    dry_run = body.get("dry_run")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise ApiError(400, "dry_run must be true or false", {"dry_run": repr(dry_run)[:100]})
    rate_limit = _number(body, "rate_limit")
    if rate_limit is not None and rate_limit <= 0:
        raise ApiError(400, "rate_limit must be a positive number of entries per second")
    canary_size = body.get("canary_size")
    if canary_size is not None and _json_id(canary_size) is None:
        raise ApiError(400, "canary_size must be a positive integer")
    ratio = _number(body, "canary_max_failure_ratio")
    if ratio is not None:
        if canary_size is None:
            raise ApiError(400, "canary_max_failure_ratio needs canary_size")
        if not 0 <= ratio <= 1:
            raise ApiError(400, "canary_max_failure_ratio must be between 0 and 1")
    return {
        "dry_run": bool(dry_run),
        "rate_limit": rate_limit,
        "canary_size": canary_size,
        "canary_max_failure_ratio": ratio,
    }


def _number(body, key):
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"{key} must be a number", {key: repr(value)[:100]})
    return value


def _ids(value):
    if not isinstance(value, list) or not value:
        raise ApiError(400, "ids must be a non-empty list of DLQ entry ids")
    if len(value) > MAX_IDS:
        raise ApiError(
            413,
            f"at most {MAX_IDS} ids per request; requeue more with a filter",
            {"ids": len(value), "max_ids": MAX_IDS},
        )
    ids = [_json_id(pk) for pk in value]
    if None in ids:
        bad = value[ids.index(None)]
        raise ApiError(400, "ids must be positive integers", {"id": repr(bad)[:100]})
    return ids


def _check_ids_in_scope(ids, scope):
    if scope is None:
        return
    outside = list(
        DLQEntry.objects.filter(pk__in=ids)
        .exclude(job_id__in=sorted(scope))
        .order_by("pk")
        .values_list("pk", flat=True)[:20]
    )
    if outside:
        raise ApiError(
            403,
            "this API token may not requeue entries of jobs it may not use",
            {"ids": outside, "jobs": sorted(scope.values())},
        )


def _filters(body, token, scope):
    name = body.get("job")
    group_id = _filter_id(body, "error_group")
    batch_id = _filter_id(body, "batch")
    if name is None and group_id is None and batch_id is None:
        raise ApiError(
            400, 'name the entries: {"ids": [...]}, or a filter of job, error_group, batch'
        )
    filters = {}
    if name is not None:
        max_length = Job._meta.get_field("name").max_length
        if not isinstance(name, str) or len(name) > max_length or not slug_re.match(name):
            raise ApiError(400, "job must be a job name (a slug)", {"job": repr(name)[:100]})
        filters["job"] = job_for(token, name).name
    elif scope is not None:
        # Keeps a limited token's run inside its jobs without widening the filter.
        raise ApiError(
            403,
            "this API token is limited to some jobs: name the job in the filter",
            {"jobs": sorted(scope.values())},
        )
    if group_id is not None:
        if not ErrorGroup.objects.filter(pk=group_id).exists():
            raise ApiError(404, f"no error group {group_id}", {"error_group": group_id})
        filters["error_group"] = group_id
    if batch_id is not None:
        if not Batch.objects.filter(pk=batch_id).exists():
            raise ApiError(404, f"no batch {batch_id}", {"batch": batch_id})
        filters["batch"] = batch_id
    return filters


def _filter_id(body, key):
    value = body.get(key)
    if value is None:
        return None
    number = _json_id(value)
    if number is None:
        raise ApiError(400, f"{key} must be a positive integer id", {key: repr(value)[:100]})
    return number


def _json_id(value):
    """A JSON integer ≥ 1 (not a string, a float or a boolean) as an id, or None."""
    return as_id(value) if isinstance(value, int) else None


def _newest_entry_id():
    """The cut of a filter run: entries stored after this moment are not part of it."""
    return DLQEntry.objects.aggregate(newest=Max("pk"))["newest"] or 0


def _run_in_scope(run, scope):
    """Whether every entry `run` can reach belongs to one of the token's jobs."""
    filters = run.filters or {}
    if "job" in filters:
        return filters["job"] in scope.values()
    if run.entry_ids is not None:
        return not (
            DLQEntry.objects.filter(pk__in=run.entry_ids).exclude(job_id__in=sorted(scope)).exists()
        )
    if "error_group" in filters:
        group = ErrorGroup.objects.filter(pk=filters["error_group"]).first()
        return group is not None and group.job_name in scope.values()
    if "batch" in filters:
        return Batch.objects.filter(pk=filters["batch"], job_id__in=sorted(scope)).exists()
    return False
