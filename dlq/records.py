"""Checking submitted records before anything is stored: bad input changes nothing."""

from django.conf import settings


class InvalidRecords(ValueError):
    """Records Velo will not accept, with the HTTP status that says why."""

    def __init__(self, message, *, status=400, detail=None):
        super().__init__(message)
        self.status = status
        self.detail = detail


def _unstorable(value, path):
    """The path of the first string a database cannot store (NUL, lone surrogates), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return path, "contains a NUL character (\\u0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "contains a lone UTF-16 surrogate, which is not valid Unicode"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable(key, f"{path} (key)") or _unstorable(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _unstorable(item, f"{path}[{i}]")
            if found:
                return found
    return None


def validate(records):
    """Raise InvalidRecords unless `records` is a non-empty list of storable JSON objects."""
    if not isinstance(records, list):
        raise InvalidRecords('expected a JSON array of records, or {"records": [...]}')
    if not records:
        raise InvalidRecords("the batch has no records")
    limit = settings.VELO_MAX_BATCH_RECORDS
    if len(records) > limit:
        raise InvalidRecords(
            f"the batch has {len(records)} records; at most {limit} are accepted",
            status=413,
            detail={"records": len(records), "max_records": limit},
        )
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidRecords(
                f"record {i} is a {type(record).__name__}; every record must be a JSON object",
                detail={"index": i},
            )
        found = _unstorable(record, "$")
        if found:
            path, why = found
            raise InvalidRecords(
                f"record {i}: the value at {path} {why}", detail={"index": i, "path": path}
            )
