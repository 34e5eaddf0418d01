"""The front door (/): the first operator page this user may open, never a 403.

After an alert an operator types the host name; the DLQ health page is the
first stop, then the error history, then the admin (which shows what is left
for them). Someone not logged in is sent to the login first, and comes back
here, so the choice is made for who they turn out to be.
"""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect

from common.access import may_view

# The pages in the order an operator wants them, with the model each needs to view.
DOORS = (("dlq:health", "dlq.Job"), ("errors:history", "errors.ErrorGroup"))


@staff_member_required
def front_door(request):
    for page, model in DOORS:
        if may_view(request, model):
            return redirect(page)
    return redirect("admin:index")
