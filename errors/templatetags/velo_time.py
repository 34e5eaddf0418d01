"""`{{ moment|ago }}`: a relative time for reading at a glance, the exact UTC time on hover.

"3 minutes ago" answers "is it still happening?"; the title keeps the time to
the second, in UTC like every stored time, for comparing with logs.
"""

import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(moment):
    if not moment:
        return "–"
    utc = moment.astimezone(datetime.UTC)
    now = timezone.now()
    if abs((now - moment).total_seconds()) < 60:
        words = "just now"
    elif moment < now:
        words = f"{timesince(moment, now)} ago"
    else:
        words = f"in {timesince(now, moment)}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        words,
    )
