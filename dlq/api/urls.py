from django.urls import path

from . import views

urlpatterns = [
    path("jobs/<str:job_name>/batches", views.submit_batch, name="api-submit-batch"),
    path("batches/<int:batch_id>", views.batch_status, name="api-batch-status"),
]
