"""Fingerprints: errors that differ only in their variable parts share one group.

A message's template is the message with every variable part replaced by one
placeholder, `<*>`; the fingerprint hashes (job, error type, template). It is a
pure function of the message: every worker on every host, in any order, gives
a message the same group, and the database's unique constraint on the
fingerprint makes two workers racing to create a group create one.

What is a variable (each becomes `<*>`):

- numbers of any kind, with a sign, a fraction, an exponent or a unit glued
  on: `3001`, `-24.0`, `1e-5`, `3001ms`, `5.2KB`, `0x800f080d`;
- every token with a digit in it, which is an id, a version, a counter or a
  numbered name: `blk_-6952295868487656571`, `customer_8841`, `user-48213`,
  `attempt_1445144423722_0020_m_000000_0`, `cus_NffrFeUfNV2Hib`, `6.1.7601.23505`;
- ids made of a short prefix and a random-looking body without digits
  (`cus_NffrFeUfNVHib`) and long hex runs (`ffffffff`, `8f3a9c21`);
- UUIDs, e-mail addresses, URLs, IP addresses (v4 and v6, with a port), host
  names (`ns.example.com`, `MSRA-SA-39.fareast.corp.microsoft.com`), file paths
  (`/var/www/html/`, `C:\\Windows\\winsxs`) and file names (`chrome.exe`);
- dates and times in the usual forms: ISO 8601, `2016/9/27:20:30:31.455`,
  `Fri Jun 17 07:07:00 2005`, `17/Jun/2005`;
- the value of a `key=value` pair (`tty=NODEVssh`, `rhost=`), except `true`,
  `false` and `null`, which often tell two messages apart;
- a quoted value: a quoted text that is not a plain name (`'N/A'`, `'2 apples'`),
  or any quoted text right after `:`, `=`, `(`, `[` or `,`
  (`Field 'price': 'abc'`); an empty pair of brackets, `()` or `[]`, is an empty value;
- the name after `user`, `username` or `login` (`session closed for user cyrus`);
- whatever comes after the first MAX_MESSAGE_CHARS (1,024) characters: messages
  that differ only past them share a template, and no message, whatever it
  holds, costs more than its head.

An HTTP status right after `status`, `HTTP`, `code`, `returned` or `response`
keeps its class: `HTTP 503` and `HTTP 502` are `HTTP 5xx`, apart from `HTTP 4xx`.

What stays: words, names and punctuation: an exception's name, a field or a
column name (`Field 'price'`, `column 'symbol'`), a type (`'number'`), a method
(`setSystemUiVisibility`), constants (`REAL_GET_TASKS`), `true` and `false`, and
short names with a number in them that name a thing rather than count it: a
word and at most two digits, glued (`ssh2`, `IPv4`, `md5`, `s3`, `Win32`).
A run of placeholders separated only by blanks or light punctuation is one
placeholder (a list of any length is one value), and blanks are folded.
"""

import functools
import hashlib
import re

# Bumped when the rules change in a way that moves messages between groups;
# groups remember the version that made them (a group made by an older version
# keeps its messages until an operator regroups).
GROUPING_VERSION = 2
PLACEHOLDER = "<*>"
# A template is made from a message's first MAX_MESSAGE_CHARS characters; the rest, if any,
# is one more variable. The cost of a message is bounded by this, whatever it holds: the
# patterns run in linear time, but a crafted message (every character a place where some
# pattern starts) costs several times a plain one of the same length.
MAX_MESSAGE_CHARS = 1024

_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_TLD = r"(?:com|net|org|edu|gov|mil|int|io|info|biz|local|lan|internal|localdomain|[a-z]{2})"
_ID_CHARS = r"[\w.+@$~#%-]"

# The variable parts of one field (a run of text between blanks), leftmost
# first; the wider patterns come first, so a URL's digits or a date's numbers go
# whole, as one. Each open-ended run starts only where such a run starts (a
# lookbehind), so a hostile field costs linear time, not quadratic.
_FIELD_PATTERNS = [
    # The value of key=value, up to a separator (brackets inside it balanced);
    # true and false stay, as they often tell two messages apart.
    r"(?<=[\w\]]=)(?!=)(?!(?:true|false)(?![^,;&)\]}]))"
    r"(?:[^,;&(){}\[\]]|\{[^{}]*\}|\([^()]*\)|\[[^\[\]]*\])+",
    r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://\S*",  # URL
    r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",  # e-mail
    r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b",
    # Dates and times: ISO 8601, 2016/9/27:20:30:31.455, 17/Jun/2005:10:00:00, a clock.
    rf"\b\d{{4}}[-/]\d{{1,2}}[-/]\d{{1,2}}(?:[T:]{_CLOCK})?(?:Z|[+-]\d{{2}}:?\d{{2}})?",
    rf"\b\d{{1,2}}[-/]{_MONTH}[-/]\d{{2,4}}(?::{_CLOCK})?",
    rf"\b{_CLOCK}\b",
    # A host name: labels ending in a top-level domain, with an optional port.
    rf"(?<![\w.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+{_TLD}(?::\d+)?(?![\w.-])",
    r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b",  # IPv4, with its port
    # IPv6: eight groups, or fewer with a "::" in them.
    r"(?<![\w:])(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{1,4}:){7})"
    r"[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])",
    # A path of two parts or more, Unix or Windows.
    r"(?<![\w/\\])(?:[A-Za-z]:)?(?:[\\/][\w.$~@+{}#%-]*){2,}",
    # A file name with a common extension.
    r"(?<![\w.-])[\w.-]+\.(?:exe|dll|so|sys|jar|war|class|py|js|rb|sh|bat|log|txt|csv|json|xml"
    r"|yaml|yml|ini|conf|cfg|properties|dat|bin|tmp|bak|gz|zip|tar|pdf|png|jpg|html?)\b",
    # A token holding a digit (not a word with at most two digits glued on, such
    # as ssh2 or IPv4: a name, not a count), a long hex run, a prefixed random id.
    rf"(?<!{_ID_CHARS})(?:(?![A-Za-z]{{2,}}\d{{1,2}}(?!{_ID_CHARS})){_ID_CHARS}*\d{_ID_CHARS}*"
    rf"|[0-9a-fA-F]{{8,}}"
    rf"|[a-z]{{2,8}}_(?=[A-Za-z]*[a-z][A-Z][a-z]?[A-Z])[A-Za-z]{{10,}})(?!{_ID_CHARS})",
]
_FIELD_RE = re.compile("|".join(f"(?:{pattern})" for pattern in _FIELD_PATTERNS), re.IGNORECASE)

# Quoted texts; whether one is a value is decided by what it holds and what precedes it.
_QUOTED_RE = re.compile(r"(?P<before>[:=(\[,{]\s*)?(?P<q>['\"])(?P<text>[^'\"\n]{0,200})(?P=q)")
_PLAIN_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z_.$-]*\Z")
_EMPTY_BRACKETS_RE = re.compile(r"\(\s*\)|\[\s*\]")
_RUN_RE = re.compile(r"<\*>(?:[ \t,:;/.\-]*<\*>)+")
# Words that make the next one a value: a user name; a number's unit; a date.
_USER_WORDS = frozenset({"user", "username", "login"})
_NOT_A_NAME = frozenset(
    [
        "unknown",
        "name",
        "names",
        "id",
        "account",
        "not",
        "is",
        "was",
        "has",
        "had",
        "for",
        "from",
        "by",
        "to",
        "with",
        "in",
        "on",
        "at",
        "and",
        "or",
        "the",
        "a",
        "an",
    ]
)
_UNITS = frozenset(
    [
        "b",
        "kb",
        "mb",
        "gb",
        "tb",
        "pb",
        "kib",
        "mib",
        "gib",
        "tib",
        "bytes",
        "byte",
        "s",
        "ms",
        "us",
        "µs",
        "ns",
        "sec",
        "secs",
        "second",
        "seconds",
        "min",
        "mins",
        "minute",
        "minutes",
        "hour",
        "hours",
        "day",
        "days",
        "%",
    ]
)
# An HTTP status after one of these keeps its class (4xx, 5xx): a 404 and a 503 are two problems.
_STATUS_WORDS = frozenset({"status", "http", "code", "returned", "response"})
_MONTHS = frozenset(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
)
_DAYS = frozenset(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
_TRAILING = ",;:.!?)]}>'\""
_LEADING = "([{<'\""
_HEX_LETTERS = frozenset("abcdefABCDEF")


@functools.lru_cache(maxsize=8192)
def _field(field):
    """One field with its variable parts replaced (fields repeat: constants are cached)."""
    return _FIELD_RE.sub(PLACEHOLDER, field)


def _quoted(match):
    text = match["text"]
    before = match["before"] or ""
    if before or not _PLAIN_NAME_RE.match(text):
        return f"{before}{match['q']}{PLACEHOLDER}{match['q']}"
    return match[0]


@functools.lru_cache(maxsize=8192)
def _parts(field):
    """(leading punctuation, the bare word in lower case, trailing punctuation) of a field."""
    core = field.strip(_LEADING + _TRAILING)
    if not core:
        return field, "", ""
    start = field.index(core)
    return field[:start], core.lower(), field[start + len(core) :]


def normalize(message):
    """The message's template: its variable parts replaced with `<*>`.

    Memoised by the head it is made from (a memo of whole messages would keep
    4,096 of any size): a failing batch mostly repeats a few messages.
    """
    return _template(*_head(message))


@functools.lru_cache(maxsize=4096)
def _template(text, cut):
    """The template of a message's head; the message went on past it if `cut`.

    The head is cut into fields at blanks; most fields are plain words and cost nothing.
    """
    if "'" in text or '"' in text:
        text = _QUOTED_RE.sub(_quoted, text)
    if "(" in text or "[" in text:
        text = _EMPTY_BRACKETS_RE.sub(lambda m: f"{m[0][0]}{PLACEHOLDER}{m[0][-1]}", text)
    fields = text.split()
    out = []
    before = ""
    for i, field in enumerate(fields):
        lead, word, trail = _parts(field)
        if before in _USER_WORDS and word not in _NOT_A_NAME and word.isidentifier():
            field = lead + PLACEHOLDER + trail
        elif word in _UNITS and out and out[-1].endswith(PLACEHOLDER):
            out[-1] += trail
            before = word
            continue
        elif (word in _MONTHS or word in _DAYS) and _starts_a_date(fields, i):
            field = lead + PLACEHOLDER + trail
        elif before in _STATUS_WORDS and _is_http_status(word):
            field = f"{lead}{word[0]}xx{trail}"
        elif not field.isalpha():
            field = _field(field)
        elif len(field) >= 8 and _HEX_LETTERS.issuperset(field):
            field = PLACEHOLDER
        out.append(field)
        # A value is not a word that makes the next one a value ("user user [preauth]").
        before = word if PLACEHOLDER not in field else ""
    if cut:
        out.append(PLACEHOLDER)
    return _RUN_RE.sub(PLACEHOLDER, " ".join(out))


def _head(message):
    """(the first MAX_MESSAGE_CHARS characters of the message, whether it was longer).

    A field the cut splits in two is dropped whole (its first part alone is not the word),
    unless it is the only one; what was cut off becomes one `<*>`, so messages that differ only
    past the cut share a template.
    """
    if len(message) <= MAX_MESSAGE_CHARS:
        return message, False
    head = message[:MAX_MESSAGE_CHARS]
    if not message[MAX_MESSAGE_CHARS].isspace() and not head[-1].isspace():
        fields = head.rsplit(maxsplit=1)
        if len(fields) == 2:
            head = fields[0]
    return head, True


def _is_http_status(word):
    return len(word) == 3 and word.isdigit() and "1" <= word[0] <= "5"


def _starts_a_date(fields, i):
    """A month or day name followed by a day of the month or by a month: `Jun 17`, `Fri Jun`."""
    following = fields[i + 1] if i + 1 < len(fields) else ""
    return following[:1].isdigit() or following[:3].lower() in _MONTHS


def clear_caches():
    """Forget every memoised message and field (benchmarks time a cold start)."""
    _template.cache_clear()
    _field.cache_clear()
    _parts.cache_clear()


def fingerprint(job_name, error_type, template):
    """A stable id for the group of (job, error type, template)."""
    key = "\x1f".join((job_name, error_type, template))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def group_keys(messages, error_type="Error", job="bench", rules=None):
    """The group key each message gets, in order, at a fresh job: exactly the engine's grouping.

    Needs no Django and no database: a fingerprint is a function of the
    message alone (and of the job's rules, an errors.rules.Rules, if any), so
    the key of each message is its fingerprint.
    """
    if rules is not None:
        return [rules.key(job, error_type, message)[0] for message in messages]
    return [fingerprint(job, error_type, normalize(message)) for message in messages]
