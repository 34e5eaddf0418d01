"""GET /api/v1/dlq: DLQ entries, newest first, a page at a time behind an opaque cursor.

Every page is one ORDER BY id DESC ... LIMIT query that an index ending in id
serves: (job, status, id), (error_group, status, id), (status, id), (job, id)
or the primary key. Nothing counts the table: a page says whether there is a
next one by reading one row more than it shows.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from .. import redaction
from ..models import DLQEntry, Job
from . import params, shapes
from .auth import allowed_jobs, job_for, require_token
from .responses import json_errors

PARAMS = ("job", "status", "error_group", "batch", "cursor", "limit")
# Everything the shape shows; the traceback and the original payload stay in the table.
FIELDS = (
    "id",
    "job",
    "batch",
    "index",
    "status",
    "attempts",
    "error_message",
    "error_type",
    "error_group",
    "payload",
    "node_id",
    "created_at",
    "last_attempt_at",
    "resolved_at",
)


@csrf_exempt
@require_GET
@json_errors
def dlq_entries(request):
    """400 for a bad filter, limit or cursor; 403 for a job the token may not use; 404 unknown job.

    A token limited to some jobs sees only those jobs' entries (none when its
    list is empty), and gets the 403 for an unknown job too (auth.unknown).
    """
    token = require_token(request)
    query = request.GET
    params.reject_unknown(query, PARAMS)
    name = params.job_name(query)
    status = params.choice(query, "status", DLQEntry.Status.values)
    group_id = params.object_id(query, "error_group")
    batch_id = params.object_id(query, "batch")
    limit = params.limit(query)
    below = params.cursor(query)

    entries = DLQEntry.objects.only(*FIELDS)
    if name is not None:
        entries = entries.filter(job_id=job_for(token, name).pk)
    else:
        scope = allowed_jobs(token)
        if scope is not None:
            entries = entries.filter(job_id__in=sorted(scope))
    if status is not None:
        entries = entries.filter(status=status)
    if group_id is not None:
        entries = entries.filter(error_group_id=group_id)
    if batch_id is not None:
        entries = entries.filter(batch_id=batch_id)
    if below is not None:
        entries = entries.filter(pk__lt=below)
    page = list(entries.order_by("-pk")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]

    # The few jobs of a page in one small query, rather than a join on every row: their
    # names, and their configs' redact fields (the API always masks sensitive payload fields).
    jobs = {
        pk: (name, redaction.for_config(config))
        for pk, name, config in Job.objects.filter(pk__in={e.job_id for e in page}).values_list(
            "pk", "name", "config"
        )
    }
    unknown = (None, redaction.for_config(None))
    return JsonResponse(
        {
            "results": [shapes.dlq_entry(e, *jobs.get(e.job_id, unknown)) for e in page],
            "next": _next_url(request, page[-1].pk) if more else None,
        }
    )


def _next_url(request, last_id):
    query = request.GET.copy()
    query["cursor"] = params.encode_cursor(last_id)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
