"""Velo's built-in processor: JSON Schema validation of each record (`json_schema`).

Patterns (`pattern`, `patternProperties`, and the `additionalProperties` they
weed) run on RE2 (google-re2), in time linear in the text, never on Python's
backtracking `re`: `^(a+)+$` against 40 `a`s and a `!` takes microseconds, not
hours. A schema whose patterns RE2 cannot compile (backreferences, lookaround)
is refused when the job is saved, naming the pattern.
"""

import functools

import jsonschema
import re2
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from . import Processor

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class RecordInvalid(ValueError):
    """A record that does not have the shape its job expects."""


class UnsafePattern(ValueError):
    """A schema pattern RE2 cannot compile."""


@functools.lru_cache(maxsize=1024)
def _re2(pattern):
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsafePattern(
            f"pattern {pattern!r} is not one RE2 takes ({why}); Velo runs schema patterns on"
            " RE2, which never backtracks: rewrite it without backreferences or lookaround"
        ) from None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _re2(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if _re2(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance, schema):
    """Properties neither `properties` nor `patternProperties` names (jsonschema's own
    helper matches them with `re`)."""
    properties = schema.get("properties", {})
    patterns = [_re2(p) for p in schema.get("patternProperties", {})]
    return [
        key
        for key in instance
        if key not in properties and not any(p.search(key) for p in patterns)
    ]


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            joined = ", ".join(repr(each) for each in extras)
            was = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({joined} {was} unexpected)"
            )


RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}

# The `regex` format on RE2: used to check a schema's own patterns when the job is saved.
FORMAT_CHECKER = jsonschema.FormatChecker()


@FORMAT_CHECKER.checks("regex", raises=UnsafePattern)
def _is_re2(instance):
    if isinstance(instance, str):
        _re2(instance)
    return True


@functools.lru_cache(maxsize=64)
def _re2_validator(base):
    return jsonschema.validators.extend(base, RE2_KEYWORDS)


def validator_class(schema):
    """The schema's draft, its patterns on RE2."""
    return _re2_validator(jsonschema.validators.validator_for(schema, default=Draft202012Validator))


def _field_path(error):
    """The dotted path of the field a jsonschema error is about, or of the missing one."""
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{path}.{missing}" if path else missing
    return path or "(record)"


def json_schema(record, ctx):
    """Validate the record against config["schema"]; the message names the failing field."""
    schema = ctx.config.get("schema", {})
    error = best_match(validator_class(schema)(schema).iter_errors(record))
    if error is not None:
        raise RecordInvalid(f"Field '{_field_path(error)}': {error.message}")


def check_schema_config(config):
    """A broken schema is refused when the job is saved, not by failing every record later."""
    schema = (config or {}).get("schema")
    if not isinstance(schema, dict):
        raise ValueError('json_schema needs config["schema"], a JSON Schema object')
    base = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
    try:
        base.check_schema(schema, format_checker=FORMAT_CHECKER)
    except jsonschema.SchemaError as exc:
        if isinstance(exc.cause, UnsafePattern):
            where = "/".join(str(part) for part in exc.absolute_path) or "(schema)"
            raise ValueError(f"config['schema'] at {where}: {exc.cause}") from None
        raise ValueError(f"config['schema'] is not a valid JSON Schema: {exc.message}") from None
    if _mentions(schema, "unevaluatedProperties") and _mentions(schema, "patternProperties"):
        # jsonschema evaluates unevaluatedProperties' patterns with `re`, past our keywords.
        raise ValueError(
            "config['schema']: unevaluatedProperties together with patternProperties is not"
            " supported (their patterns would run on a backtracking engine); use"
            " additionalProperties"
        )


def _mentions(schema, keyword):
    if isinstance(schema, dict):
        return keyword in schema or any(_mentions(value, keyword) for value in schema.values())
    if isinstance(schema, list):
        return any(_mentions(value, keyword) for value in schema)
    return False


PROCESSORS = (
    Processor("json_schema", json_schema, transactional=False, check_config=check_schema_config),
)
