"""Secrets in records: which payload fields are sensitive, and masking them where they show.

A field is sensitive when its key names one of the redact fields: the global
`VELO_REDACT_FIELDS` plus the job's own `config["redact_fields"]`. Keys match
case-insensitively, at any depth, by whole words: `password` masks `password`,
`db_password`, `userPassword` and `PASSWORD`; `card_number` masks
`credit_card_number` (words split on `_`, `-`, `.`, blanks and camelCase).

The stored payload is never changed (a requeue runs on the real value); it is
masked when shown, unless the user holds `dlq.view_sensitive_payload`. Error
messages and tracebacks are masked before they are stored (`Redactor.masker`),
so no copy of them (entry, group, occurrence, log line, metric) holds a secret.
"""

import functools
import json
import os
import sys
import sysconfig

import re2
from django.conf import settings

MASK = "[redacted]"
PERMISSION = "dlq.view_sensitive_payload"
DEFAULT_REDACT_FIELDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "authorization",
    "cookie",
    "card_number",
    "cardnumber",
    "cvv",
    "cvc",
    "pin",
    "iban",
    "ssn",
)
# A value this short is masked only where its key names it (`pin=12`): replacing
# every "12" in a message would mangle it and hide nothing.
MIN_VALUE_CHARS = 3
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_WORD_RE = re2.compile(r"[A-Z]+[a-z0-9]*|[a-z0-9]+", _OPTIONS)
# `key=value`, `key: value`, `"key": "value"`, `'key': 'value'` in a message: the key, what
# joins it to its value, and the value (quoted, or up to a separator; a scheme such as
# `Bearer` goes with the credential after it).
_PAIR_JOINT = r"([\"']?\s*[:=]\s*)"
_PAIR_VALUE = (
    rf"({re2.escape(MASK)}|\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?"
    r"|(?:(?i:bearer|basic|token|digest)\s+)?[^\s,;&)}\]\"']+)"
)


def _pair_re(fields):
    """`key=value` pairs whose key holds a field's words (glued by `_`, `-`, `.` or nothing,
    any case); whether the key names the field is checked on each match."""
    glue = r"[_.-]?"
    names = "|".join(glue.join(re2.escape(word) for word in field) for field in fields)
    return re2.compile(
        rf"(?i:((?:[A-Za-z][\w.-]*?)?(?:{names})[\w.-]*)){_PAIR_JOINT}{_PAIR_VALUE}", _OPTIONS
    )


def words(key):
    """A key's words, lower case: `userPassword` -> ("user", "password")."""
    return tuple(word.lower() for word in _WORD_RE.findall(str(key)))


def _contains(haystack, needle):
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class Redactor:
    """The redact fields of one job (or of none): matching keys, masking payloads and texts."""

    def __init__(self, fields):
        self.fields = tuple(sorted({words(f) for f in fields if words(f)}))
        self._pairs = _pair_re(self.fields) if self.fields else None
        # A cheap prefilter for texts: each field's words glued, found by `in` in the text
        # lowered and unglued (`card_number`, `cardNumber` and `card-number` hold `cardnumber`).
        self._hints = tuple(sorted({"".join(field) for field in self.fields}))
        self._keys = {}

    def __bool__(self):
        return bool(self.fields)

    def sensitive(self, key):
        """Whether a payload key names a redact field (cached: records repeat their keys)."""
        found = self._keys.get(key)
        if found is None:
            key_words = words(key)
            found = any(_contains(key_words, field) for field in self.fields)
            if len(self._keys) < 10_000:
                self._keys[key] = found
        return found

    def mask(self, payload):
        """A copy of `payload` with every sensitive field's value replaced by MASK."""
        if not self.fields:
            return payload
        if isinstance(payload, dict):
            return {
                key: MASK if self.sensitive(key) else self.mask(value)
                for key, value in payload.items()
            }
        if isinstance(payload, list):
            return [self.mask(value) for value in payload]
        return payload

    def secrets(self, payload):
        """The texts of the sensitive values in `payload` (its leaves under a sensitive key).

        On every failed record: a walk without recursion, that looks only at keys (cached)
        and containers until a sensitive key is found."""
        found = set()
        if not self.fields or not isinstance(payload, (dict, list)):
            return found
        known, stack = self._keys, [payload]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key, item in value.items():
                    hit = known.get(key)
                    if hit is None:
                        hit = self.sensitive(key)
                    if hit:
                        _leaves(item, found)
                    elif isinstance(item, (dict, list)):
                        stack.append(item)
            else:
                stack.extend(item for item in value if isinstance(item, (dict, list)))
        return found

    def texts(self, payload, *texts):
        """`texts` (a failure's message, traceback) with the payload's secrets masked, and every
        value of a `key=value` pair whose key is sensitive."""
        mask = self.masker(payload)
        return tuple(mask(text) for text in texts)

    def masker(self, payload):
        """A function masking a text as texts() does, with `payload`'s secrets found once."""
        if not self.fields:
            return str
        return functools.partial(self.text, secrets=self.ordered_secrets(payload))

    def ordered_secrets(self, payload):
        """secrets(), in the order text() replaces them: longest first."""
        return tuple(sorted(self.secrets(payload), key=len, reverse=True))

    def text(self, text, secrets=()):
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if self.hinted(text):
            text = self._pairs.sub(self._pair, text)
        return text

    def hinted(self, text):
        """Whether `text` may hold a sensitive `key=value` pair (text()'s prefilter). It holds
        for a text split at a line break when it holds for either part: the runner asks
        it once for the frames a batch's failures share, then only for each last line."""
        lowered = text.lower().replace("_", "").replace("-", "").replace(".", "")
        return any(hint in lowered for hint in self._hints)

    def _pair(self, match):
        key, joint, value = match.group(1), match.group(2), match.group(3)
        quote = value[:1] if value[:1] in "\"'" else ""
        if not self.sensitive(key) or value == MASK:
            return match.group(0)
        if joint[:1] in "\"'" and not quote and not value[:1].isdigit() and value[:1] != "-":
            # `'password': shorter than minLength 8` names a field; it holds no value.
            return match.group(0)
        return f"{key}{joint}{quote}{MASK}{quote}"

    def unmask(self, edited, original):
        """An edited payload with each MASK left untouched under a sensitive key put back to the
        original's value at the same place: an editor who cannot see a secret keeps it."""
        if not self.fields:
            return edited
        if isinstance(edited, dict) and isinstance(original, dict):
            restored = {}
            for key, value in edited.items():
                if value == MASK and self.sensitive(key) and key in original:
                    restored[key] = original[key]
                elif key in original:
                    restored[key] = self.unmask(value, original[key])
                else:
                    restored[key] = value
            return restored
        if isinstance(edited, list) and isinstance(original, list):
            return [
                self.unmask(value, original[i]) if i < len(original) else value
                for i, value in enumerate(edited)
            ]
        return edited

    def scrub(self, document, payload):
        """`document` (a fixed payload, a diff, a reason) with `payload`'s secret values masked
        wherever they appear: a fix can copy a secret under a key that is not sensitive."""
        if not self.fields:
            return document
        secrets = sorted(self.secrets(payload), key=len, reverse=True)

        def walk(value):
            if isinstance(value, dict):
                return {key: walk(item) for key, item in value.items()}
            if isinstance(value, list):
                return [walk(item) for item in value]
            if isinstance(value, str):
                return self.text(value, secrets)
            if value is not None and not isinstance(value, bool) and str(value) in secrets:
                return MASK
            return value

        return walk(document)

    def reads_sensitive(self, pointer):
        """Whether a JSON Pointer (/card/number) passes through a sensitive key."""
        parts = str(pointer).split("/")
        return any(self.sensitive(part.replace("~1", "/").replace("~0", "~")) for part in parts)

    def mask_diff(self, diff):
        """RFC 6902 operations (a fix's diff) with the values of sensitive paths masked."""
        if not self.fields or not diff:
            return diff
        masked = []
        for op in diff:
            if self.reads_sensitive(op.get("path", "")) or self.reads_sensitive(op.get("from", "")):
                op = {k: MASK if k in ("value", "was") else v for k, v in op.items()}
            else:
                op = {k: self.mask(v) if k in ("value", "was") else v for k, v in op.items()}
            masked.append(op)
        return masked


def _leaves(value, found):
    """Every scalar under a sensitive key, as text (and as JSON writes it, when it differs)."""
    if isinstance(value, dict):
        for item in value.values():
            _leaves(item, found)
    elif isinstance(value, list):
        for item in value:
            _leaves(item, found)
    elif not isinstance(value, bool) and value is not None:
        text = str(value)
        if len(text) >= MIN_VALUE_CHARS:
            found.add(text)
            escaped = json.dumps(text, ensure_ascii=False)[1:-1]
            if escaped != text:
                found.add(escaped)


@functools.lru_cache(maxsize=256)
def _redactor(fields):
    return Redactor(fields)


def global_fields():
    return tuple(settings.VELO_REDACT_FIELDS)


def job_fields(config):
    """The job's own redact fields, from its config (checked when the job is saved)."""
    fields = (config or {}).get("redact_fields") if isinstance(config, dict) else None
    return tuple(f for f in fields if isinstance(f, str)) if isinstance(fields, list) else ()


def for_config(config):
    """The Redactor for a job's config: the global fields and the job's."""
    return _redactor(tuple(sorted({*global_fields(), *job_fields(config)})))


def for_configs(configs):
    """The Redactor of the global fields and those of every one of these job configs: for a
    selection that may span jobs."""
    return _redactor(
        tuple(sorted({*global_fields(), *(f for c in configs for f in job_fields(c))}))
    )


def for_job(job):
    return for_config(job.config if job is not None else None)


def check_config(config):
    """config["redact_fields"], when given, is a list of field names."""
    fields = (config or {}).get("redact_fields")
    if fields is None:
        return
    if not isinstance(fields, list) or not all(isinstance(f, str) and words(f) for f in fields):
        raise ValueError(
            'config["redact_fields"] must be a list of field names, e.g. ["iban", "pin"]'
        )


def may_see(user):
    """Whether `user` sees payloads unmasked."""
    return user is not None and user.has_perm(PERMISSION)


def shown(payload, job, user):
    """The payload as `user` may see it."""
    return payload if may_see(user) else for_job(job).mask(payload)


def mask_json_text(text, redactor):
    """The start of a payload's JSON text (a list cell's excerpt, maybe cut short) with the
    value after each sensitive key masked: a scalar, or a whole object or array (to the end
    of the text when it is cut inside it)."""
    if not redactor or not text:
        return text
    out, pos = [], 0
    for match in _JSON_KEY_RE.finditer(text):
        start = match.end()
        if start < pos or not redactor.sensitive(_unquote(match.group(1))):
            continue
        end = _value_end(text, start)
        out.append(text[pos:start])
        out.append(json.dumps(MASK))
        pos = end
    out.append(text[pos:])
    return "".join(out)


_JSON_KEY_RE = re2.compile(r"\"((?:[^\"\\]|\\.)*)\"\s*:\s*", _OPTIONS)


def _unquote(key):
    try:
        return json.loads(f'"{key}"')
    except ValueError:
        return key


def _value_end(text, start):
    """Where the JSON value starting at `start` ends (or the text's end when it is cut)."""
    depth, i, in_string = 0, start, False
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
                if depth == 0:
                    return i + 1
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif char == "," and depth == 0:
            return i
        i += 1
    return len(text)


# `File "/abs/path/x.py"` in a traceback, for a path no known prefix shortened.
_FILE_RE = re2.compile(r'File "(/[^"\n]*/)([^"/\n]+/[^"/\n]+)"', _OPTIONS)


@functools.lru_cache(maxsize=1)
def _path_prefixes(base_dir):
    """The server's directories a traceback's paths start with, longest first: the libraries
    (site-packages, the standard library), the project, the interpreter's prefixes."""
    paths = sysconfig.get_paths()
    found = [paths.get(k) for k in ("purelib", "platlib", "stdlib", "platstdlib")]
    found += [base_dir, sys.prefix, sys.exec_prefix, sys.base_prefix]
    prefixes = set()
    for path in filter(None, found):
        for each in (str(path), os.path.realpath(path)):
            prefixes.add(each.rstrip("/") + "/")
    return tuple(sorted(prefixes - {"/"}, key=len, reverse=True))


def short_paths(traceback):
    """A traceback as users see it: file paths relative to the library or project directory
    they are in (`django/db/models/query.py`, `dlq/processors/builtin.py`), so the server's
    layout does not show; any other absolute path keeps only its last two parts."""
    if not traceback:
        return traceback
    for prefix in _path_prefixes(str(settings.BASE_DIR)):
        if prefix in traceback:
            traceback = traceback.replace(prefix, "")
    if 'File "/' in traceback:
        traceback = _FILE_RE.sub(lambda m: f'File ".../{m.group(2)}"', traceback)
    return traceback
