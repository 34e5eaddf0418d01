"""The operator permissions the DLQ admins check, written once.

`@admin.action(permissions=["requeue"])` asks `has_requeue_permission`, and the
extra pages ask the same methods, so a button and the page behind it agree.
"""

from ..permissions import DISCARD, REQUEUE, TRIAGE

__all__ = ["DISCARD", "REQUEUE", "TRIAGE", "OperatorPermissions"]


class OperatorPermissions:
    """Mixed into a ModelAdmin: requeue, discard and triage, by their model permissions."""

    def has_requeue_permission(self, request):
        return request.user.has_perm(REQUEUE)

    def has_discard_permission(self, request):
        return request.user.has_perm(DISCARD)

    def has_triage_permission(self, request):
        return request.user.has_perm(TRIAGE)
