"""A job's own grouping rules, on top of the built-in ones: patterns that are variables, and
fixed groups.

A rule set is a list of rules, as a job stores it (JSON) and a jobs file writes
it (`[[jobs.grouping]]` tables):

- `{"variables": ["for (\\\\S+) from"]}`: each match of a pattern becomes `<*>`
  (only its capture groups, when it has some), before the built-in rules run;
- `{"error_type": "TimeoutError", "message": "^Upstream", "group": "Upstream timeouts"}`:
  a failure that matches (every key given must match: the error type exactly,
  the message by a pattern) goes to the group of that name, whatever its
  message says. The first fixed rule that matches wins.

Patterns are RE2's (google-re2): they run in time linear in the message, and
refuse what could not (backreferences, look-arounds), so no rule can hold a
worker.
"""

import functools
import json
from dataclasses import dataclass

import re2

from .fingerprint import PLACEHOLDER, fingerprint, normalize

KEYS = {"variables", "error_type", "message", "group"}
# The error type of a fixed group's fingerprint: no real type is written so.
FIXED = "<rule>"
MAX_PATTERN_CHARS = 1000
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class InvalidRules(ValueError):
    """A rule set that cannot be used, with what is wrong with which rule."""


def _compile(pattern, where):
    if not isinstance(pattern, str) or not pattern:
        raise InvalidRules(f"{where}: a pattern is a non-empty string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidRules(f"{where}: a pattern is at most {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidRules(f"{where}: {pattern!r} is not a pattern RE2 takes: {why}") from None


@dataclass(frozen=True)
class FixedGroup:
    error_type: str | None
    message: object | None  # a compiled pattern
    name: str
    number: int = 0  # the rule's place in its set, from 1

    def matches(self, error_type, message):
        if self.error_type is not None and error_type != self.error_type:
            return False
        return self.message is None or self.message.search(message) is not None


@dataclass(frozen=True)
class Rules:
    """A job's rule set, checked and compiled; `source` is it as stored."""

    source: tuple = ()
    variables: tuple = ()  # (rule number, compiled pattern)
    fixed: tuple = ()

    @classmethod
    def parse(cls, rules):
        """The rule set of `rules` (a list of dicts, or None); InvalidRules says what is wrong."""
        if rules is None:
            return NONE
        if not isinstance(rules, list):
            raise InvalidRules("grouping rules are a list of rules (tables)")
        variables, fixed = [], []
        for number, rule in enumerate(rules, 1):
            where = f"rule {number}"
            if not isinstance(rule, dict):
                raise InvalidRules(f"{where}: a rule is a table of keys")
            unknown = sorted(set(rule) - KEYS)
            if unknown:
                raise InvalidRules(f"{where}: unknown key(s) {', '.join(unknown)}")
            if "variables" in rule:
                if set(rule) != {"variables"}:
                    raise InvalidRules(f"{where}: a variables rule has only the key 'variables'")
                patterns = rule["variables"]
                if not isinstance(patterns, list) or not patterns:
                    raise InvalidRules(f"{where}: 'variables' is a list of patterns")
                variables += [(number, _compile(p, f"{where}, variables")) for p in patterns]
            elif "group" in rule:
                fixed.append(_fixed(rule, where, number))
            else:
                raise InvalidRules(f"{where}: give 'variables', or 'group' with what it matches")
        return cls(_canonical(rules), tuple(variables), tuple(fixed))

    def __bool__(self):
        return bool(self.variables or self.fixed)

    def as_json(self):
        """The rules as a job stores them."""
        return [json.loads(rule) for rule in self.source]

    def template(self, error_type, message):
        """(error type to hash, template) of a failure under these rules."""
        for rule in self.fixed:
            if rule.matches(error_type, message):
                return FIXED, rule.name
        for _, pattern in self.variables:
            message = _blank_out(pattern, message)
        return error_type, normalize(message)

    def matching(self, error_type, message):
        """The numbers of the rules that match a failure (to find rules that match nothing)."""
        found = {rule.number for rule in self.fixed if rule.matches(error_type, message)}
        return found | {number for number, p in self.variables if p.search(message) is not None}

    @property
    def numbers(self):
        return set(range(1, len(self.source) + 1))

    def key(self, job_name, error_type, message):
        """(fingerprint, template) of a failure under these rules."""
        hashed_type, template = self.template(error_type, message)
        return fingerprint(job_name, hashed_type, template), template


def _fixed(rule, where, number):
    name = rule["group"]
    if not isinstance(name, str) or not name.strip():
        raise InvalidRules(f"{where}: 'group' is the name of the group, a non-empty string")
    error_type = rule.get("error_type")
    if error_type is not None and (not isinstance(error_type, str) or not error_type):
        raise InvalidRules(f"{where}: 'error_type' is an error type's name")
    message = _compile(rule["message"], f"{where}, message") if "message" in rule else None
    if error_type is None and message is None:
        raise InvalidRules(f"{where}: a fixed group matches an 'error_type', a 'message', or both")
    return FixedGroup(error_type, message, name.strip(), number)


def _blank_out(pattern, message):
    """`message` with each match of `pattern` (or its capture groups) as `<*>`."""
    if not pattern.groups:
        return pattern.sub(PLACEHOLDER, message)
    pieces, last = [], 0
    for match in pattern.finditer(message):
        for group in range(1, pattern.groups + 1):
            start, end = match.span(group)
            if start >= last and start != -1:
                pieces += [message[last:start], PLACEHOLDER]
                last = end
    return "".join(pieces) + message[last:]


def _canonical(rules):
    """The rules as a tuple of sorted-key JSON texts: equal rule sets compare equal."""
    return tuple(json.dumps(rule, sort_keys=True) for rule in rules)


NONE = Rules()


def of(rules):
    """The compiled rule set of stored rules (a job's JSON), compiled once per distinct set.

    An attempt asks for its job's rules every time; compiling the patterns
    each time would cost more than grouping.
    """
    if not rules:
        return NONE
    return _compiled(json.dumps(rules, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _compiled(text):
    return Rules.parse(json.loads(text))
