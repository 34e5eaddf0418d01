"""Helpers the DLQ admin modules share: escaped text blocks and the read-only base admin."""

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html


def pre(text):
    """Stored text in a <pre>: always escaped, whatever a record or a message holds."""
    return format_html("<pre>{}</pre>", text)


def pretty_json(value):
    return pre(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def admin_link(viewname, pk, text):
    return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes; changing or deleting them by hand would break its counters."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
