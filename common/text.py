"""Keeping free text (error messages, tracebacks, log lines) to a bound, visibly.

A record can fail with a message of megabytes; stored, grouped, logged and
served as is, it multiplies into the database, the log and every page. Text
over its bound keeps its head (a traceback its head and its tail, where the
last frames are) and says how long it was. The bounds are settings, read at
call time: VELO_MAX_ERROR_MESSAGE_CHARS, VELO_MAX_TRACEBACK_CHARS and
VELO_MAX_LOGGED_MESSAGE_CHARS.
"""

from django.conf import settings


def marker(length):
    return f"… [truncated, {length} characters]"


def clip(text, limit, length=None):
    """`text` cut to at most `limit` characters, ending with the marker; unchanged if it fits.

    Clipping clipped text changes nothing, so each layer may apply its own bound.
    `length` is the text's original length, for text already cut once.
    """
    if len(text) <= limit:
        return text
    note = marker(length or len(text))
    return text[: max(0, limit - len(note))] + note


def clip_middle(text, limit):
    """`text` cut to at most `limit` characters, keeping a quarter from its head and the rest
    from its tail around the marker: a traceback's last frames and line matter most."""
    if len(text) <= limit:
        return text
    note = f"\n{marker(len(text))}\n"
    room = max(0, limit - len(note))
    head = room // 4
    return text[:head] + note + text[len(text) - (room - head) :]


def error_message(text):
    """An error message as it is stored, grouped and shown."""
    return clip(text, settings.VELO_MAX_ERROR_MESSAGE_CHARS)


def traceback(text):
    """A traceback as it is stored: its head and its tail."""
    return clip_middle(text, settings.VELO_MAX_TRACEBACK_CHARS)


def for_log(text, length=None):
    """A message (or any free text) as a log line shows it: a few hundred characters of it;
    `length` as for clip()."""
    return clip(str(text), settings.VELO_MAX_LOGGED_MESSAGE_CHARS, length)
