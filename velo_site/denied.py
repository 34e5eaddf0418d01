"""The 403 page: inside the admin's frame, saying what is missing, never a bare error."""

from errors.views import page


def permission_denied(request, exception=None):
    return page(request, "403.html", "Permission denied", status=403)
