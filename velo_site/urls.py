"""Velo's URLs: the admin, the API, and (later) the operator pages, probes and /metrics."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("dlq.api.urls")),
    path("", include("django_prometheus.urls")),
]
