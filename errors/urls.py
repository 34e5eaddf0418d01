"""URLs of the error history pages, mounted at /errors/."""

from django.urls import path

from . import views

app_name = "errors"
urlpatterns = [
    path("", views.history, name="history"),
    path("<int:group_id>/", views.group_detail, name="group"),
]
