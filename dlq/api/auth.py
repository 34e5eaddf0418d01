"""Who is calling: the bearer token of a request, and which jobs it may see and act on."""

from .. import tokens
from ..models import Job
from .responses import ApiError

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


def allowed_jobs(token):
    """None when the token may use every job, else {job id: job name} of its jobs."""
    jobs = dict(token.jobs.values_list("pk", "name"))
    return jobs or None


def job_for(token, name):
    """The job called `name`; ApiError 404 when there is none, 403 when the token may not use it."""
    job = Job.objects.filter(name=name).first()
    if job is None:
        raise ApiError(404, f"no job named {name!r}", {"job": name})
    require_job_access(token, job)
    return job
