"""URLs of the DLQ operator pages, mounted at /dlq/."""

from django.urls import path

from . import views

app_name = "dlq"
urlpatterns = [
    path("health/", views.health_page, name="health"),
]
