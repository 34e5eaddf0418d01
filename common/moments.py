"""Times as operators read them: "3 min ago", "in 2 h", with the exact UTC time on hover.

Relative words answer "is it still happening?" at a glance; the `<time>` element
keeps the moment to the second, in UTC like every stored time, for comparing
with logs and for machines (its `datetime` attribute).
"""

import datetime

from django.utils import timezone
from django.utils.html import format_html

NBSP = "\xa0"  # "3 min" never breaks between the number and its unit
MINUTE, HOUR, DAY, YEAR = 60, 3600, 86400, 365 * 86400
EMPTY = "–"


def _count(number, unit, plural=None):
    word = unit if number == 1 else (plural or unit)
    return f"{number}{NBSP}{word}"


def span_words(seconds):
    """A non-negative span in the largest unit that fits, rounded down: "59 min", "1 h 5 min",
    "3 days", "2 years". Under a minute is "" (the caller says "just now")."""
    seconds = int(seconds)
    if seconds < MINUTE:
        return ""
    if seconds < HOUR:
        return _count(seconds // MINUTE, "min")
    if seconds < DAY:
        hours, minutes = divmod(seconds // MINUTE, 60)
        return _count(hours, "h") + (f" {_count(minutes, 'min')}" if minutes else "")
    if seconds < YEAR:
        return _count(seconds // DAY, "day", "days")
    return _count(seconds // YEAR, "year", "years")


def relative_words(moment, now=None):
    """ "3 min ago" for the past, "in 3 min" for the future, "just now" within a minute behind
    and "in under a minute" within a minute ahead."""
    now = now or timezone.now()
    delta = (now - moment).total_seconds()
    words = span_words(abs(delta))
    if delta >= 0:
        return f"{words} ago" if words else "just now"
    return f"in {words}" if words else "in under a minute"


def utc_text(moment):
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def moment_html(moment, now=None):
    """`<time datetime="…" title="2026-12-02 18:01:02 UTC">3 min ago</time>`, or a dash."""
    if not moment:
        return EMPTY
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.astimezone(datetime.UTC).isoformat(),
        utc_text(moment),
        relative_words(moment, now),
    )
