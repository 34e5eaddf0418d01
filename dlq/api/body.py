"""Reading submitted records from a request body: a JSON array, {"records": [...]}, or NDJSON.

Only the shape of the body is checked here; whether the records are acceptable
is dlq.ingest.records' call, so every way of submitting applies the same rules.
"""

import json
import math
import re
from contextlib import contextmanager

from django.conf import settings
from django.http import UnreadablePostError

from ..ingest.records import MAX_DEPTH, too_many_records
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
    """The list of records in `body`; ApiError 400 when it is not JSON/NDJSON of that shape,
    413 when it holds more than VELO_MAX_BATCH_RECORDS records.

    A body that could hold more records than the limit (more commas) is parsed one
    record at a time and counting stops at the limit: 9 MiB of `[{},{},…]` would
    otherwise become three million dicts (240 MiB) before anything counted them.
    """
    if not body.strip():
        raise ApiError(400, "the request body is empty", {"expected": "a JSON array of records"})
    limit = settings.VELO_MAX_BATCH_RECORDS
    if content_type.lower() in NDJSON_TYPES:
        return _parse_ndjson(body, limit)
    with _json_errors("the body"):
        # As json.loads reads bytes: UTF-8, -16 or -32, told by the first bytes.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        start = _skip_space(text, 0)
        if text.startswith("[", start) and text.count(",") < limit:
            # No more records than commas + 1, so never over the limit: parsed in one
            # C-speed call. Broken JSON goes the careful way below, for its error.
            try:
                return _decoder().decode(text)
            except ValueError:
                pass
        if text.startswith("[", start):
            records, end = _array(text, start, limit)
        elif text.startswith("{", start):
            records, end = _records_object(text, start, limit)
        else:
            # A lone value: not a list, refused by dlq.ingest.records like every other caller's.
            records, end = _decoder().raw_decode(text, start)
        if _skip_space(text, end) != len(text):
            raise json.JSONDecodeError("Extra data", text, _skip_space(text, end))
    return records


def _array(text, pos, limit):
    """(the records of the JSON array at text[pos], the position after it), one at a time."""
    decoder, records = _decoder(), []
    pos = _skip_space(text, pos + 1)
    if text.startswith("]", pos):
        return records, pos + 1
    while True:
        if len(records) == limit:
            raise _too_many(limit)
        record, pos = decoder.raw_decode(text, pos)
        records.append(record)
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif text.startswith("]", pos):
            return records, pos + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


def _records_object(text, pos, limit):
    """{"records": [...]}, and nothing else, read as _array reads an array."""
    keys, records = [], None
    pos = _skip_space(text, pos + 1)
    while not text.startswith("}", pos):
        if not text.startswith('"', pos):
            raise json.JSONDecodeError("Expecting property name in double quotes", text, pos)
        key, pos = _decoder().raw_decode(text, pos)
        keys.append(key)
        if key != "records" or records is not None:
            break  # refused below, before its value is read
        pos = _skip_space(text, pos)
        if not text.startswith(":", pos):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
        pos = _skip_space(text, pos + 1)
        if not text.startswith("[", pos):
            raise ApiError(400, 'expected a JSON array of records, or {"records": [...]}')
        records, pos = _array(text, pos, limit)
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
            if text.startswith("}", pos):  # {"records": [...],} is not JSON
                raise json.JSONDecodeError("Expecting property name in double quotes", text, pos)
        elif not text.startswith("}", pos):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
    if keys != ["records"]:
        raise ApiError(
            400,
            'a JSON object body must be {"records": [...]} and nothing else',
            {"keys": sorted(keys)[:20]},
        )
    return records, pos + 1


def _parse_ndjson(body, limit):
    if body.count(b"\n") < limit:  # no more lines than the limit: split them at once
        lines = enumerate(body.split(b"\n"), start=1)
        return [loads_json(text, where=f"line {n}", line=n) for n, text in lines if text.strip()]
    records, line, seen = [], 1, 0
    for match in _NON_BLANK_LINE.finditer(body):
        line += body.count(b"\n", seen, match.start())
        seen = match.start()
        if len(records) == limit:
            raise _too_many(limit)
        records.append(loads_json(match.group(), where=f"line {line}", line=line))
    return records


# A line with something other than whitespace on it; found from line starts only, in linear time.
_NON_BLANK_LINE = re.compile(rb"^[^\S\n]*\S[^\n]*", re.MULTILINE)
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text, pos):
    return _SPACE.match(text, pos).end()


def _decoder():
    return json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _too_many(limit):
    exc = too_many_records(limit)
    return ApiError(exc.status, str(exc), exc.detail)


def loads_json(text, *, where, line=None):
    """`text` parsed as strict JSON (no NaN, no Infinity, no overflowing float); ApiError 400."""
    with _json_errors(where, line):
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


@contextmanager
def _json_errors(where, line=None):
    """Parsing errors as the API's 400s, naming where (and the line) they were found."""
    detail = {} if line is None else {"line": line}
    try:
        yield
    except RecursionError:
        raise ApiError(
            400, f"{where} is nested too deeply", {**detail, "max_depth": MAX_DEPTH}
        ) from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN/Infinity, overlong integers
        raise ApiError(400, f"{where} is not valid JSON", {**detail, "message": str(exc)}) from exc


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
