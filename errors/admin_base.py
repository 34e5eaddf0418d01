"""Admin building blocks both apps use: the read-only base and escaped text blocks."""

from django.contrib import admin
from django.utils.html import format_html


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine and the tracker write; changing or deleting them by hand would
    break their counters (and a delete confirmation page would collect every related
    row first). Operators act through actions and services instead."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def pre(text):
    """Stored text in a <pre>: always escaped, whatever a record or a message holds."""
    return format_html("<pre>{}</pre>", text)
