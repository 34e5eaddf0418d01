"""The API's URLs, mounted at /api/v1/: one module per resource."""

from django.urls import path

from . import batches, entries, error_groups, jobs, openapi, requeue_runs

urlpatterns = [
    path("jobs/<str:job_name>/batches", batches.submit_batch, name="api-submit-batch"),
    path("jobs/<str:job_name>/pause", jobs.pause_job, name="api-job-pause"),
    path("jobs/<str:job_name>/resume", jobs.resume_job, name="api-job-resume"),
    path("batches/<int:batch_id>", batches.batch_status, name="api-batch-status"),
    path("dlq", entries.dlq_entries, name="api-dlq"),
    path("dlq/requeue", requeue_runs.start_requeue, name="api-dlq-requeue"),
    path("dlq/patch", requeue_runs.start_fix, name="api-dlq-patch"),
    path("requeue-runs/<int:run_id>", requeue_runs.run_status, name="api-requeue-run"),
    path("errors", error_groups.error_groups, name="api-errors"),
    path("errors/stats", error_groups.error_stats, name="api-error-stats"),
    path("openapi.json", openapi.openapi_document, name="api-openapi"),
]
