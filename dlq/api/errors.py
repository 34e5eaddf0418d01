"""ApiError: a refusal with its HTTP status, raised anywhere in a view and answered as JSON."""

from functools import wraps

from .middleware import error_response


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
