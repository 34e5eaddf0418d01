"""The API's answers when it refuses: the JSON error shape, and ApiError, raised anywhere in a
view and answered in that shape."""

from functools import wraps

from django.http import JsonResponse


def error_response(status, error, detail=None):
    """{"error": what is wrong, "detail": anything that helps}: every refusal's shape."""
    return JsonResponse({"error": error, "detail": detail}, status=status)


class ApiError(Exception):
    """An answer other than success; `json_errors` turns it into {"error", "detail"}."""

    def __init__(self, status, error, detail=None, headers=None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def json_errors(view):
    """Answer an ApiError raised by `view` with the API's JSON error shape.

    Raising lets the checks a view runs (token, job, body) stay one line each.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ApiError as exc:
            response = error_response(exc.status, exc.error, exc.detail)
            for name, value in exc.headers.items():
                response[name] = value
            return response

    return wrapper
