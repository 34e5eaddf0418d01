"""Who is calling: the bearer token of a request, and which jobs it may see and act on."""

from .. import tokens
from ..models import Job
from .params import is_job_name
from .responses import ApiError

# RFC 6750: a 401 tells the client which scheme to use.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="velo"'}
NOT_ALLOWED = "this API token may not use this job"


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


def forbidden(error=NOT_ALLOWED, detail=None):
    """The 403 for what a token may not use. It names nothing the caller did not send, so it
    does not confirm which jobs exist."""
    return ApiError(403, error, detail)


def unknown(token, not_found, refusal=None):
    """The answer for something that does not exist: `not_found` (a 404) for a token for every
    job, which could use it if it existed; for a limited token the 403 (`refusal`, by default
    `forbidden()`) it gets for another job's, so probing names or ids tells it nothing."""
    return not_found if token.all_jobs else (refusal or forbidden())


def require_job_access(token, job):
    """ApiError 403 unless `token` may act on `job`."""
    if not tokens.token_allows_job(token, job):
        raise forbidden()


def allowed_jobs(token):
    """None when the token may use every job, else {job id: job name} of its jobs (maybe none)."""
    if token.all_jobs:
        return None
    return dict(token.jobs.values_list("pk", "name"))


def job_for(token, name):
    """The job called `name`; ApiError 404 when there is none, 403 when the token may not use it.

    A limited token is looked up among its own jobs only: any other name, a
    job's or nobody's, is the same 403 (see `unknown`).
    """
    job = None
    if is_job_name(name):
        jobs = Job.objects.all() if token.all_jobs else token.jobs.all()
        job = jobs.filter(name=name).first()
    if job is None:
        raise unknown(token, ApiError(404, f"no job named {name[:100]!r}", {"job": name[:100]}))
    return job
