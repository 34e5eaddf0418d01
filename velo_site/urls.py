"""Velo's URLs: the admin, the API, the operator pages, and (later) probes and /metrics."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("dlq.api.urls")),
    path("errors/", include("errors.urls")),
    path("dlq/", include("dlq.urls")),
    path("", include("django_prometheus.urls")),
]
