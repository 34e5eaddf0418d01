"""Requeue runs: POST /api/v1/dlq/requeue starts one, POST /api/v1/dlq/patch fixes payloads and
starts one; GET /api/v1/requeue-runs/<id> follows it.

The run is dlq.requeue's, and so are the checks of what it acts on and how
(RequeueScope, RequeueOptions): this module checks the JSON types of the body
and what the token may reach.
"""

from contextlib import contextmanager

from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from errors.models import ErrorGroup

from .. import requeue
from ..actors import Actor
from ..models import Batch, DLQEntry, RequeueRun
from ..requeue import RequeueOptions, RequeueScope, fix
from . import shapes
from .auth import allowed_jobs, forbidden, job_for, require_token, unknown
from .body import loads_json, read_body
from .params import is_job_name, reject_unknown
from .responses import ApiError, json_errors

OPTION_KEYS = ("rate_limit", "dry_run", "canary_size", "canary_max_failure_ratio")
# `status` is accepted for the wording "by filter (job, error group, status)",
# but only pending entries are ever requeued.
KEYS = ("ids", *requeue.FILTER_KEYS, "status", *OPTION_KEYS)
FIX_KEYS = (*KEYS, "patch", "convert", "sample_size")


@csrf_exempt
@require_POST
@json_errors
def start_requeue(request):
    """202 {"run_id", "total", "status_url"}.

    Refusals, each starting nothing: 400 (body not a JSON object, unknown
    keys, bad values, neither ids nor a filter), 401, 403 (token without
    can_requeue, or limited to jobs and reaching beyond them), 404 (unknown
    job, error group or batch in the filter), 413 (more than
    requeue.MAX_IDS ids or a body over VELO_MAX_BODY_BYTES), 409 (a live run
    holds entries of this selection: its "run_id", "status" and "status_url" in
    the detail; one run per scope at a time).
    """
    token, body = _requeue_body(request, KEYS)
    with _refusals(request):
        scope, options = _scope_and_options(body, token)
        run = requeue.start_run(scope, options, Actor.api(token))
    return _run_started(request, run)


@csrf_exempt
@require_POST
@json_errors
def start_fix(request):
    """POST /api/v1/dlq/patch: fix the selected payloads, then requeue them as a run.

    The body is a requeue's (ids or a filter, and its options) plus "patch",
    RFC 6902 operations applied to each payload, and/or "convert", [{"path",
    "to": "number" | "string" | "trim"}]. 202 as a requeue; with "dry_run"
    200 {"dry_run": true, "total", "sample": [{"id", "applies", "before",
    "after", "diff"} or {"id", "applies": false, "reason"}]} for the first
    "sample_size" entries (default 10, at most 100), changing nothing.
    Refusals as a requeue's (409 included), and 400 for a patch that is not one.
    """
    token, body = _requeue_body(request, FIX_KEYS)
    if "patch" not in body and "convert" not in body:
        raise ApiError(400, 'give "patch" (RFC 6902 operations) and/or "convert"')
    size = body.get("sample_size", fix.PREVIEW_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= fix.MAX_PREVIEW:
        raise ApiError(400, f"sample_size must be an integer from 1 to {fix.MAX_PREVIEW}")
    with _refusals(request):
        payload_fix = fix.PayloadFix.parse(body.get("patch"), body.get("convert"))
        if payload_fix is None:
            raise ApiError(400, 'give "patch" (RFC 6902 operations) and/or "convert", not null')
        payload_fix.refuse_sensitive_reads()  # the API never shows sensitive fields
        scope, options = _scope_and_options(body, token, fix=payload_fix)
        if options.dry_run:
            scope = scope.cut()
            sample = fix.preview(scope, payload_fix, size, reveal=False)
            return JsonResponse(
                {
                    "dry_run": True,
                    "total": scope.count(),
                    "sample": [item.as_json() for item in sample],
                }
            )
        run = requeue.start_run(scope, options, Actor.api(token))
    return _run_started(request, run)


def _requeue_body(request, keys):
    """(the token, the body as a JSON object of `keys`) of a request that may start requeues."""
    token = require_token(request)
    if not token.can_requeue:
        raise ApiError(403, "this API token may not start requeues", {"can_requeue": False})
    return token, _json_object(read_body(request), keys)


@contextmanager
def _refusals(request):
    """The requeue service's refusals as the API's JSON errors."""
    try:
        yield
    except requeue.ScopeHeld as exc:
        detail = {
            "run_id": exc.run.pk,
            "status": exc.run.status,
            "status_url": _status_url(request, exc.run),
        }
        raise ApiError(409, str(exc), detail) from exc
    except requeue.TooManyIds as exc:
        detail = {"ids": exc.given, "max_ids": requeue.MAX_IDS}
        raise ApiError(413, str(exc), detail) from exc
    except requeue.UnknownTarget as exc:
        raise ApiError(404, str(exc), {exc.key: exc.value}) from exc
    except requeue.InvalidRequeue as exc:
        detail = {exc.field: repr(exc.value)[:100]} if exc.field else None
        raise ApiError(400, str(exc), detail) from exc


def _scope_and_options(body, token, **more):
    """What the body selects, within what the token may reach, and how the run goes."""
    access = allowed_jobs(token)
    # Options first: a body that is wrong in itself is a 400 whatever it names.
    options = RequeueOptions(
        **{key: body[key] for key in OPTION_KEYS if body.get(key) is not None}, **more
    )
    if "ids" not in body:
        return _filter_scope(body, token, access), options
    if any(key in body for key in requeue.FILTER_KEYS):
        raise ApiError(400, "give either ids or a filter (job, error_group, batch), not both")
    if not isinstance(body["ids"], list):
        raise ApiError(400, "ids must be a non-empty list of DLQ entry ids")
    scope = RequeueScope.of_ids(body["ids"], strings=False)
    outside = _ids_outside(scope.entry_ids, access)
    if outside:
        raise ApiError(
            403,
            "this API token may not requeue entries of jobs it may not use",
            {"ids": outside, "jobs": sorted(access.values())},
        )
    return scope, options


def _status_url(request, run):
    return request.build_absolute_uri(reverse("api-requeue-run", args=[run.pk]))


def _run_started(request, run):
    status_url = _status_url(request, run)
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
    refusal = forbidden("this API token may not read a run over jobs it may not use")
    if run is None:
        raise unknown(token, ApiError(404, f"no requeue run {run_id}", {"run_id": run_id}), refusal)
    access = allowed_jobs(token)
    if access is not None and not _run_in_scope(run, access):
        raise refusal
    return JsonResponse(shapes.requeue_run(run))


def _json_object(body, keys):
    data = loads_json(body, where="the body")
    if not isinstance(data, dict):
        raise ApiError(
            400,
            'the body must be a JSON object: {"ids": [...]} or a filter '
            '{"job", "error_group", "batch"}',
        )
    reject_unknown(data, keys, what="key")
    if data.get("status") not in (None, DLQEntry.Status.PENDING):
        raise ApiError(
            400, "only pending entries are requeued", {"status": str(data["status"])[:100]}
        )
    return data


def _filter_scope(body, token, access):
    """The filter of the body, within what the token may use; 404 for what does not exist."""
    scope = RequeueScope.matching(
        job=body.get("job"),
        error_group=body.get("error_group"),
        batch=body.get("batch"),
        strings=False,
    )
    if scope.job is not None:
        if not is_job_name(scope.job):
            raise ApiError(400, "job must be a job name (a slug)", {"job": repr(scope.job)[:100]})
        job_for(token, scope.job)
    elif access is not None:
        # Keeps a limited token's run inside its jobs without widening the filter.
        raise ApiError(
            403,
            "this API token is limited to some jobs: name the job in the filter",
            {"jobs": sorted(access.values())},
        )
    return scope.check_targets_exist()


def _ids_outside(ids, access):
    """The first ids among `ids` of entries of jobs the token may not use (none for an
    every-job token)."""
    if access is None:
        return []
    return list(
        DLQEntry.objects.filter(pk__in=ids)
        .exclude(job_id__in=sorted(access))
        .order_by("pk")
        .values_list("pk", flat=True)[:20]
    )


def _run_in_scope(run, access):
    """Whether every entry `run` can reach belongs to one of the token's jobs."""
    filters = run.filters or {}
    if "job" in filters:
        return filters["job"] in access.values()
    if run.entry_ids is not None:
        return not _ids_outside(run.entry_ids, access)
    if "error_group" in filters:
        group = ErrorGroup.objects.filter(pk=filters["error_group"]).first()
        return group is not None and group.job_id in access
    if "batch" in filters:
        return Batch.objects.filter(pk=filters["batch"], job_id__in=sorted(access)).exists()
    return False
