"""Reading submitted records from a request body: a JSON array, {"records": [...]}, or NDJSON.

Only the shape of the body is checked here; whether the records are acceptable
is dlq.ingest.records' call, so every way of submitting applies the same rules.
"""

import json
import math

from django.conf import settings
from django.http import UnreadablePostError

from ..ingest.records import MAX_DEPTH
from .responses import ApiError

NDJSON_TYPES = frozenset({"application/x-ndjson"})


def read_body(request):
    """The raw body, never more than VELO_MAX_BODY_BYTES of it read; ApiError 413 beyond that."""
    limit = settings.VELO_MAX_BODY_BYTES
    declared = _content_length(request)
    if declared is not None and declared > limit:
        raise _too_large(limit, declared)
    # Without a trustworthy Content-Length (chunked uploads, ASGI) the cap on
    # the read is what keeps a huge body out of memory.
    try:
        body = request.read(limit + 1)
    except UnreadablePostError as exc:  # the client reset the connection, a socket timeout
        raise ApiError(400, "the request body could not be read", {"message": str(exc)}) from None
    if len(body) > limit:
        raise _too_large(limit)
    if declared is not None and len(body) < declared:
        # The client closed its side early: what arrived is a cut-off body, never a batch.
        raise ApiError(
            400,
            "the request body is shorter than its Content-Length",
            {"bytes": len(body), "declared": declared},
        )
    if not body and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # Django under WSGI reads a chunked body as empty: say so, not "empty body".
        raise ApiError(411, "send the body with a Content-Length; chunked uploads are not read")
    return body


def parse_records(body, content_type):
    """The list of records in `body`; ApiError 400 when it is not JSON/NDJSON of that shape."""
    if not body.strip():
        raise ApiError(400, "the request body is empty", {"expected": "a JSON array of records"})
    if content_type.lower() in NDJSON_TYPES:
        return _parse_ndjson(body)
    data = loads_json(body, where="the body")
    if isinstance(data, dict):
        if set(data) != {"records"}:
            raise ApiError(
                400,
                'a JSON object body must be {"records": [...]} and nothing else',
                {"keys": sorted(data)[:20]},
            )
        data = data["records"]
    # A non-list is refused by dlq.ingest.records with the same message as every other caller.
    return data


def _parse_ndjson(body):
    records = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            records.append(loads_json(line, where=f"line {number}", line=number))
    return records


def loads_json(text, *, where, line=None):
    """`text` parsed as strict JSON (no NaN, no Infinity, no overflowing float); ApiError 400."""
    detail = {} if line is None else {"line": line}
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ApiError(
            400, f"{where} is nested too deeply", {**detail, "max_depth": MAX_DEPTH}
        ) from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN/Infinity, overlong integers
        raise ApiError(400, f"{where} is not valid JSON", {**detail, "message": str(exc)}) from exc
    return data


def _refuse_constant(name):
    """NaN and Infinity are not JSON: PostgreSQL refuses them, and other readers choke on them."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e400, which Python reads as infinity
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _content_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _too_large(limit, declared=None):
    detail = {"max_bytes": limit}
    if declared is not None:
        detail["bytes"] = declared
    return ApiError(413, f"the request body is larger than {limit} bytes", detail)
