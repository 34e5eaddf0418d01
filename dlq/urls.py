"""URLs of the DLQ operator pages, mounted at /dlq/."""

from django.urls import path

from . import panels, views

app_name = "dlq"
urlpatterns = [
    path("health/", views.health_page, name="health"),
    path("groups/<int:group_id>/status/", panels.set_group_status, name="group_status"),
]
