"""GET /api/v1/errors and /api/v1/errors/stats: error groups with their stored counts.

Both read ErrorGroup and ErrorTotal rows only, never the occurrences, so they
cost the same with a billion occurrences as with ten.
"""

from django.db.models import Sum
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from errors.models import ErrorGroup, ErrorTotal

from . import params, shapes
from .auth import allowed_jobs, forbidden, require_token
from .responses import json_errors

# The recent-errors buffer: the 10 most recently seen groups, as velo_error_message exports it.
TOP = 10
GROUP_FIELDS = (
    "id",
    "job_name",
    "fingerprint",
    "template",
    "error_type",
    "count",
    "first_seen",
    "last_seen",
    "status",
)


@csrf_exempt
@require_GET
@json_errors
def error_groups(request):
    """Groups, most recently seen first; `job` and `status` filter, `limit` (≤ 1000) caps.

    The job filter is a name, not a Job: a group's history outlives its job.
    """
    token = require_token(request)
    query = request.GET
    params.reject_unknown(query, ("job", "status", "limit"))
    name = params.job_name(query, ErrorGroup._meta.get_field("job_name").max_length)
    status = params.choice(query, "status", ErrorGroup.Status.values)
    limit = params.limit(query)
    groups = _visible_groups(allowed_jobs(token), name)
    if status is not None:
        groups = groups.filter(status=status)
    page = groups.only(*GROUP_FIELDS).order_by("-last_seen", "-pk")[:limit]
    return JsonResponse({"results": [shapes.error_group(g) for g in page]})


@csrf_exempt
@require_GET
@json_errors
def error_stats(request):
    """Stored totals, the number of groups, and the recent-errors buffer (the metrics' numbers)."""
    token = require_token(request)
    params.reject_unknown(request.GET, ())
    scope = allowed_jobs(token)
    groups = _visible_groups(scope, None)
    if scope is None:
        total = ErrorTotal.objects.aggregate(total=Sum("occurrences"))["total"]
    else:
        # Totals are kept per job name, which a new job can share with a gone one; a limited
        # token's jobs are counted by id, from their groups (the same sum, a few rows).
        total = groups.aggregate(total=Sum("count"))["total"]
    top = list(groups.only(*GROUP_FIELDS).order_by("-last_seen", "-pk")[:TOP])
    return JsonResponse(
        {
            "total_errors": total or 0,
            "unique_errors": groups.count(),
            "buffered_messages": len(top),
            "top": [shapes.top_error(g) for g in top],
        }
    )


def _visible_groups(scope, name):
    """The groups of job `name` (all jobs when None) within a token's scope; 403 outside it.

    A limited token sees its jobs' groups by job id: not those of a job gone that had
    one of their names (what any job's name ever reached needs an every-job token)."""
    groups = ErrorGroup.objects.all()
    if name is not None:
        if scope is not None and name not in scope.values():
            raise forbidden()
        groups = groups.filter(job_name=name)
    if scope is not None:
        groups = groups.filter(job_id__in=sorted(scope))
    return groups
