"""Which jobs a token may see: every job, or only the jobs it is limited to."""

from ..models import Job
from .auth import require_job_access
from .errors import ApiError


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
