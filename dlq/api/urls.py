from django.urls import path

from . import dlq_views, error_views, requeue_views, views

urlpatterns = [
    path("jobs/<str:job_name>/batches", views.submit_batch, name="api-submit-batch"),
    path("batches/<int:batch_id>", views.batch_status, name="api-batch-status"),
    path("dlq", dlq_views.dlq_entries, name="api-dlq"),
    path("dlq/requeue", requeue_views.start_requeue, name="api-dlq-requeue"),
    path("requeue-runs/<int:run_id>", requeue_views.run_status, name="api-requeue-run"),
    path("errors", error_views.error_groups, name="api-errors"),
    path("errors/stats", error_views.error_stats, name="api-error-stats"),
]
