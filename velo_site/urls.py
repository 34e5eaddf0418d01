"""Velo's URLs: the admin, the API, the operator pages, the probes and /metrics."""

from django.contrib import admin
from django.urls import include, path

from . import denied, front_door, metrics_view, probes

admin.site.site_header = admin.site.site_title = "Velo"
admin.site.index_title = "Operations"
handler403 = denied.permission_denied

urlpatterns = [
    path("", front_door.front_door, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("dlq.api.urls")),
    path("errors/", include("errors.urls")),
    path("dlq/", include("dlq.urls")),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("live", probes.live, name="live"),
    path("ready", probes.ready, name="ready"),
    path("health", probes.health, name="health"),
]
