"""Every answer under /api/ is JSON: unknown URLs, wrong methods and database outages too."""

import logging

from django.db import DatabaseError, DataError

from common import text as bounded

from .responses import error_response

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or _is_json(response):
            return response
        if response.status_code == 404:
            return error_response(404, "not found", {"path": request.path})
        if response.status_code == 405:
            allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
            answer = error_response(
                405, f"method {request.method} not allowed", {"allowed": allowed}
            )
            # RFC 9110: a 405 carries Allow; the JSON body does not replace it.
            answer["Allow"] = ", ".join(allowed)
            return answer
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, DataError):
            # A value the checks let through and a column cannot hold: the request's fault,
            # no outage (a 503 would invite the client to send it again for ever).
            log.warning(
                "value out of range serving %s: %s", request.path, bounded.for_log(exception)
            )
            return error_response(400, "a value in the request is out of range; nothing was stored")
        if isinstance(exception, DatabaseError):
            # A database error can quote the statement's parameters: megabytes of payload.
            log.error(
                "database unavailable while serving %s: %s",
                request.path,
                bounded.for_log(exception),
            )
            return error_response(503, "the database is unavailable; nothing was stored")
        log.exception("unexpected error serving %s", request.path)
        return error_response(500, "internal error")


def _is_json(response):
    return response.get("Content-Type", "").startswith("application/json")
