"""The grouping rules of version 1, frozen: how groups made before version 2 were keyed.

A message whose version-2 fingerprint leads nowhere is looked up by its
version-1 fingerprint too (Sentry's secondary hash), so an upgrade of the
rules does not split the groups that exist. Never change this module: its
fingerprints are stored. (Two of its patterns are run by `_sub_at_runs`, which
gives what `sub` gives in linear time; tests/errors/test_fingerprint_bound.py
checks that it does.)
"""

import functools
import hashlib
import re

# Order matters: the wider patterns go first, so a URL's digits or a date's
# numbers are swallowed whole rather than becoming <int> placeholders.
_PATTERNS = [
    ("<url>", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"),
    ("<email>", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    (
        "<uuid>",
        r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b",
    ),
    (
        "<datetime>",
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b",
    ),
    ("<date>", r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"),
    ("<time>", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),
    ("<ip>", r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"),
    # IPv6: eight groups, or fewer with a "::" in them.
    (
        "<ip>",
        r"(?<![\w:])(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{1,4}:){7})"
        r"[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])",
    ),
    ("<hex>", r"\b0[xX][0-9a-fA-F]+\b"),
    # A run of hex that holds a digit and is long enough to be an id, not a word.
    ("<hex>", r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,}\b"),
    # No \b after a number: "3001ms" and "0.5s" are a number and a unit.
    ("<float>", r"(?<![\w.])[-+]?(?:\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)"),
    ("<int>", r"(?<![\w.])[-+]?\d+"),
]
_COMPILED = [(placeholder, re.compile(pattern)) for placeholder, pattern in _PATTERNS]
# The URL's and the e-mail's patterns start with a run of characters that must end right
# before a fixed text (`://`, `@`): `sub` tries them from each place in a run that fails,
# which is quadratic (13 ms for 2,000 characters). (run's characters, fixed text, start).
_AT_RUNS = {
    _PATTERNS[0][1]: (re.compile(r"[a-zA-Z0-9+.-]"), "://", re.compile(r"\b[a-zA-Z]")),
    _PATTERNS[1][1]: (re.compile(r"[\w.+-]"), "@", re.compile(r"\b")),
}
# Messages are cut before normalising: a multi-megabyte message must not stall a worker.
MAX_MESSAGE_CHARS = 4096


@functools.lru_cache(maxsize=4096)
def normalize(message):
    """The message's template: its variable parts replaced with placeholders.

    Memoised: a failing batch mostly repeats a few messages.
    """
    template = message[:MAX_MESSAGE_CHARS]
    for placeholder, pattern in _COMPILED:
        if pattern.pattern in _AT_RUNS:
            template = _sub_at_runs(pattern, placeholder, template, *_AT_RUNS[pattern.pattern])
        else:
            template = pattern.sub(placeholder, template)
    return template


def _sub_at_runs(pattern, placeholder, text, run, fixed, start):
    """`pattern.sub(placeholder, text)`, in linear time, for a pattern that is `start`, then
    more of `run`'s characters, then `fixed` (which does not begin with one of them), then
    what does not depend on where it started.

    Its run ends where the run of those characters ends, so a match ends its run right before
    an occurrence of `fixed`, and every place in that run where `start` matches leads to the
    same end: one attempt per occurrence, from the first such place, finds what `sub` finds.
    """
    out, done = [], 0
    at = text.find(fixed)
    while at != -1:
        first = at
        while first > done and run.match(text, first - 1):
            first -= 1
        begin = start.search(text, first, at)
        found = begin and pattern.match(text, begin.start())
        if found:
            out += [text[done : found.start()], placeholder]
            done = found.end()
            at = text.find(fixed, done)
        else:
            at = text.find(fixed, at + 1)
    out.append(text[done:])
    return "".join(out)


def fingerprint(job_name, error_type, message):
    """The version-1 fingerprint of a message (the hash is the same function as version 2's)."""
    key = "\x1f".join((job_name, error_type, normalize(message)))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
