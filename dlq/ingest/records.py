"""Checking submitted records before anything is stored: bad input changes nothing.

Every way in (the API, `submit_batch`, the Python function) applies these
same rules, so a record that is accepted can always be stored and processed.
"""

import math

from django.conf import settings

from ..fields import StoredJSON

# Records nested deeper than this are refused: database adapters and
# processors walk records recursively, and a few hundred levels end in a
# RecursionError somewhere past the door.
MAX_DEPTH = 100


class InvalidRecords(ValueError):
    """Records Velo will not accept, with the HTTP status that says why."""

    def __init__(self, message, *, status=400, detail=None):
        super().__init__(message)
        self.status = status
        self.detail = detail


def _string_problem(value):
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate, which is not valid Unicode"
    return None


def find_problem(record):
    """(path, why) of the first value a database cannot store, or None; walked without recursion."""
    stack = [(record, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            why = _string_problem(value)
        elif isinstance(value, float):
            why = None if math.isfinite(value) else "is NaN or infinite, which JSON cannot hold"
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                return path, f"is nested too deeply (more than {MAX_DEPTH} levels)"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (why := _string_problem(key)):
                    return f"{path} (key {key[:40]!r})", why
                child = f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]"
                stack.append((item, child, depth + 1))
            continue
        else:
            why = None
        if why:
            return path, why
    return None


def _clearly_storable(records):
    """One C-speed pass that clears the common case: no NUL, no lone surrogate, no NaN,
    nothing nested too deep; return the records as stored (StoredJSON), or None.
    Anything it cannot clear gets the precise walk, which names the record and the field."""
    try:
        text = StoredJSON.of(records)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError, RecursionError, TypeError):
        return None
    return text if "\\u0000" not in text and _max_depth(records) < MAX_DEPTH else None


# Value types that hold nothing nested: a record made only of these is one level deep.
FLAT = frozenset({str, int, float, bool, type(None)})


def _max_depth(records):
    """Nesting depth of the records, walking containers only (strings are most values).

    Flat records (the usual pipeline row) are cleared by their value types
    alone, a C-speed pass; only the others are walked.
    """
    nested = [record for record in records if not FLAT.issuperset(map(type, record.values()))]
    deepest = 1 if len(nested) < len(records) else 0
    stack = [(record, 1) for record in nested]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def too_many_records(limit, count=None):
    """The 413 for a batch over VELO_MAX_BATCH_RECORDS; `count` is None when counting stopped
    at the limit (a request body is not parsed further than that)."""
    if count is None:
        return InvalidRecords(
            f"the batch has more than {limit} records; at most {limit} are accepted",
            status=413,
            detail={"max_records": limit},
        )
    return InvalidRecords(
        f"the batch has {count} records; at most {limit} are accepted",
        status=413,
        detail={"records": count, "max_records": limit},
    )


def validate(records):
    """Raise InvalidRecords unless `records` is a non-empty list of storable JSON objects.

    Returns the records as they are stored (dlq.fields.StoredJSON) when the fast check
    made that text, so that storing them does not serialise them again; else None.
    """
    if not isinstance(records, list):
        raise InvalidRecords('expected a JSON array of records, or {"records": [...]}')
    if not records:
        raise InvalidRecords("the batch has no records")
    limit = settings.VELO_MAX_BATCH_RECORDS
    if len(records) > limit:
        raise too_many_records(limit, len(records))
    if all(isinstance(record, dict) for record in records):
        stored = _clearly_storable(records)
        if stored is not None:
            return stored
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidRecords(
                f"record {i} is a {type(record).__name__}; every record must be a JSON object",
                detail={"index": i},
            )
        problem = find_problem(record)
        if problem:
            path, why = problem
            raise InvalidRecords(
                f"record {i}: the value at {path} {why}", detail={"index": i, "path": path}
            )


def validate_idempotency_key(key, max_length):
    """A key is 1 to max_length printable ASCII characters, so it stores the same everywhere."""
    if len(key) > max_length or not all(" " <= c <= "~" for c in key):
        raise InvalidRecords(
            f"the Idempotency-Key must be 1 to {max_length} printable ASCII characters",
            detail={"length": len(key)},
        )
