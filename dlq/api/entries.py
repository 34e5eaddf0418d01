"""GET /api/v1/dlq: DLQ entries, newest first, a page at a time behind an opaque cursor.

Every page is one ORDER BY id DESC ... LIMIT query that an index ending in id
serves: (job, status, id), (error_group, status, id), (status, id), (job, id)
or the primary key. Nothing counts the table: a page says whether there is a
next one by reading one row more than it shows.

A page is bounded in bytes as well as in entries: it ends before the entry that
would take it past VELO_API_PAGE_BYTES (and `next` goes on from there), but it
always holds one entry, whole, however big its payload (a record is at most
VELO_MAX_BODY_BYTES). `payload=false` leaves the payloads out (null), for listing.
"""

import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from .. import redaction
from ..models import DLQEntry, Job
from . import params, shapes
from .auth import allowed_jobs, job_for, require_token
from .responses import json_errors

PARAMS = ("job", "status", "error_group", "batch", "cursor", "limit", "payload")
# Rows read from the database at a time (a record can be megabytes): a page's rows are never
# all in memory at once.
FETCH_CHUNK = 4
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
    with_payload = params.flag(query, "payload", default=True)

    fields = FIELDS if with_payload else tuple(f for f in FIELDS if f != "payload")
    entries = DLQEntry.objects.only(*fields)
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
    rows = entries.order_by("-pk")[: limit + 1].iterator(chunk_size=FETCH_CHUNK)
    parts, last_id, more = _page(rows, limit, settings.VELO_API_PAGE_BYTES, with_payload)
    next_url = json.dumps(_next_url(request, last_id) if more else None)
    return HttpResponse(
        f'{{"results": [{", ".join(parts)}], "next": {next_url}}}',
        content_type="application/json",
    )


def _page(rows, limit, budget, with_payload):
    """(the page's entries as JSON texts, the last one's id, whether more follow).

    Each entry is serialised once, as it is read; the page ends at `limit`
    entries or before the one that would pass `budget` bytes (never empty).
    """
    parts, size, last_id, jobs = [], 0, None, {}
    for entry in rows:
        if len(parts) == limit:
            return parts, last_id, True
        if entry.job_id not in jobs:  # a page's few jobs, a small query each: no join per row
            jobs[entry.job_id] = _name_and_redactor(entry.job_id)
        shape = shapes.dlq_entry(entry, *jobs[entry.job_id], payload=with_payload)
        # ensure_ascii (the default): the text's length is its size in bytes.
        part = json.dumps(shape, cls=DjangoJSONEncoder)
        if parts and size + len(part) > budget:
            return parts, last_id, True
        parts.append(part)
        size += len(part) + 2
        last_id = entry.pk
    return parts, last_id, False


def _name_and_redactor(job_id):
    """A job's name, and its config's redactor (the API always masks sensitive payload fields);
    a job deleted meanwhile has no name and the global fields."""
    name, config = Job.objects.filter(pk=job_id).values_list("name", "config").first() or (
        None,
        None,
    )
    return name, redaction.for_config(config)


def _next_url(request, last_id):
    query = request.GET.copy()
    query["cursor"] = params.encode_cursor(last_id)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
