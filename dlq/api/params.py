"""Reading the query string of the list endpoints: ids, choices, limits and cursors, or a 400.

Unknown parameters are refused rather than ignored: a misspelt filter
(`?staus=pending`) must not quietly answer with everything.
"""

import base64
import binascii

from django.core.validators import slug_re

from common.ids import parse_id

from ..models import Job
from .responses import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CURSOR_PREFIX = "id:"
JOB_NAME_MAX = Job._meta.get_field("name").max_length


def reject_unknown(given, known, what="query parameter"):
    """A 400 naming the first key of `given` (a query string, a JSON body) not in `known`."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ApiError(
            400,
            f"unknown {what} {unknown[0][:100]!r}",
            {"unknown": [name[:100] for name in unknown[:20]], "allowed": list(known)},
        )


def single(query, name):
    """The parameter's value, None when absent or empty; 400 when given twice."""
    values = query.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"give {name!r} at most once", {name: values[:20]})
    return values[0] if values and values[0] != "" else None


def object_id(query, name):
    """A positive integer id, or None."""
    value = single(query, name)
    if value is None:
        return None
    number = parse_id(value)
    if number is None:
        raise ApiError(400, f"{name} must be a positive integer id", {name: value[:100]})
    return number


def choice(query, name, choices):
    value = single(query, name)
    if value is not None and value not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}", {name: value[:100]})
    return value


def flag(query, name, *, default):
    """A yes/no parameter: true/false (or 1/0); the default when absent."""
    value = single(query, name)
    if value is None:
        return default
    if value.lower() not in FLAGS:
        raise ApiError(400, f"{name} must be true or false", {name: value[:100]})
    return FLAGS[value.lower()]


FLAGS = {"true": True, "1": True, "false": False, "0": False}


def is_job_name(value, max_length=JOB_NAME_MAX):
    """Whether `value` can be a job's name: a slug of at most `max_length` characters.

    Anything else (a NUL, say, which PostgreSQL cannot even compare) names no
    job and is not worth a query.
    """
    return isinstance(value, str) and len(value) <= max_length and bool(slug_re.match(value))


def job_name(query, max_length=JOB_NAME_MAX):
    """The `job` parameter, which must be a job name (a slug), or None."""
    value = single(query, "job")
    if value is not None and not is_job_name(value, max_length):
        raise ApiError(400, "job must be a job name (a slug)", {"job": value[:100]})
    return value


def limit(query):
    value = single(query, "limit")
    if value is None:
        return DEFAULT_LIMIT
    number = parse_id(value)
    if number is None or number > MAX_LIMIT:
        raise ApiError(
            400, f"limit must be an integer from 1 to {MAX_LIMIT}", {"limit": value[:100]}
        )
    return number


def encode_cursor(last_id):
    """An opaque cursor: clients pass it back as it is and must not build their own."""
    text = base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{last_id}".encode()).decode()
    return text.rstrip("=")


def cursor(query):
    """The id the page starts below, from the `cursor` parameter, or None for the first page."""
    value = single(query, "cursor")
    if value is None:
        return None
    try:
        padded = value + "=" * (-len(value) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        text = ""
    last_id = parse_id(text.removeprefix(CURSOR_PREFIX)) if text.startswith(CURSOR_PREFIX) else None
    if last_id is None:
        raise ApiError(
            400,
            "cursor is not one this API gave out; pass the `next` URL as it is",
            {"cursor": value[:100]},
        )
    return last_id
