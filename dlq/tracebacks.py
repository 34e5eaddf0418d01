"""Tracebacks stored per failure site: its frames once (TracebackHead), each entry's last line.

A storm fails every record at one site, and each traceback repeats the same
frames before its own `module.Type: message` line. Only the plain form the
runner writes (dlq.processors.runner.traceback_text: the header, frames, one
final exception line) is split; a chained exception, a SyntaxError's source
lines or a traceback cut in its middle (common.text.traceback) is stored whole
in the entry, as are old entries: DLQEntry.full_traceback reads both.
"""

import hashlib
import re
from dataclasses import dataclass

from .models import TracebackHead

# The runner's plain form: the header, then frames as StackSummary.format() writes them with
# no column markers (a File line and its source line, or a repeat count).
_HEAD = re.compile(
    r"Traceback \(most recent call last\):\n"
    r'(?:  File ".*", line \d+, in .*\n(?:    .*\n)?'
    r"|  \[Previous line repeated \d+ more times?\]\n)+"
)
# What a rest that is more than an exception's final line holds.
_NOT_PLAIN = re.compile(
    r"\nThe above exception was the direct cause of the following exception:\n"
    r"|\nDuring handling of the above exception, another exception occurred:\n"
    r"|\n… \[truncated, \d+ characters\]\n"
)


@dataclass(frozen=True)
class Stored:
    """A traceback as an entry stores it: its site's head (None: whole) and the rest."""

    head_id: int | None
    rest: str


def split(text):
    """(head, rest) of a traceback in the runner's plain form, head + rest == text; else None."""
    match = _HEAD.match(text)
    if match is None:
        return None
    rest = text[match.end() :]
    # The final line starts with the exception's type (a module or builtin name).
    if not rest[:1].isidentifier() or _NOT_PLAIN.search(text):
        return None
    return text[: match.end()], rest


def digest(head):
    return hashlib.sha256(head.encode("utf-8", "surrogatepass")).hexdigest()


def store_heads(texts):
    """Each traceback as it is stored, in order, its head written if it is new (in the caller's
    transaction): one SELECT for a batch whose sites are known, an INSERT and a SELECT more
    for new ones."""
    texts = list(texts)
    parts = [split(text) for text in texts]
    digests = {head: digest(head) for head in {part[0] for part in parts if part}}
    ids = _ids(digests.values())
    new = sorted((d, head) for head, d in digests.items() if d not in ids)
    if new:
        # Another writer's insert of the same head is waited for (its transaction may yet
        # roll back), then left: the ids are read after, never kept beyond the transaction.
        # In digest order, so two writers of the same new heads take them in one order.
        TracebackHead.objects.bulk_create(
            [TracebackHead(digest=d, text=head) for d, head in new], ignore_conflicts=True
        )
        ids.update(_ids(d for d, _ in new))
    return [
        Stored(ids[digests[part[0]]], part[1]) if part else Stored(None, text)
        for text, part in zip(texts, parts, strict=True)
    ]


def _ids(digests):
    digests = list(digests)
    if not digests:
        return {}
    return dict(TracebackHead.objects.filter(digest__in=digests).values_list("digest", "pk"))
