"""Who is calling: the bearer token of a request, and whether it may act on a job."""

from .. import tokens
from .errors import ApiError

# RFC 6750: a 401 tells the client which scheme to use.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="velo"'}


def bearer_token(request):
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), or None."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def require_token(request):
    """The request's live API token; ApiError 401 when it is missing, unknown or revoked."""
    presented = bearer_token(request)
    if presented is None:
        raise ApiError(
            401, "authentication required", "send 'Authorization: Bearer <token>'", CHALLENGE
        )
    token = tokens.authenticate(presented)
    if token is None:
        raise ApiError(401, "invalid or revoked API token", None, CHALLENGE)
    return token


def require_job_access(token, job):
    """ApiError 403 unless `token` may act on `job`."""
    if not tokens.token_allows_job(token, job):
        raise ApiError(403, f"this API token may not use job {job.name!r}", {"job": job.name})
