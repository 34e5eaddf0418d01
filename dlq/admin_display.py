"""Display helpers the DLQ admin modules share: pretty JSON and links."""

import json

from django.urls import reverse
from django.utils.html import format_html

from errors.admin_base import pre


def pretty_json(value):
    return pre(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def admin_link(viewname, pk, text):
    return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)
