"""Who may open an operator page or follow a link to one: what the admin lets them view.

The pages (/errors/, /errors/<id>/, /dlq/health/) show the rows the admin
shows, so they ask the admin's own rule (`ModelAdmin.has_view_permission`:
the model's view or change permission, or what its admin adds) instead of a
copy of it. A model the admin does not register is viewable by nobody: fail
closed.
"""

from functools import wraps

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied


def _model(model):
    return apps.get_model(model) if isinstance(model, str) else model


def may_view(request, model):
    """Whether request.user may view `model` (a class or "app_label.ModelName") in the admin."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    try:
        model_admin = admin.site.get_model_admin(_model(model))
    except admin.exceptions.NotRegistered:
        return False
    return bool(model_admin.has_view_permission(request))


def view_required(*models):
    """A page for staff who may view every one of `models`: anyone else who is not staff
    goes to the admin login, staff without the permission get a 403."""

    def decorate(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            if not all(may_view(request, model) for model in models):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return staff_member_required(checked)

    return decorate
