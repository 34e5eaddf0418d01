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


# What each keyword's failure says, from the schema's side only (the keyword's value),
# never the record's: a value may be a password. `{v}` is the keyword's value.
_RULES = {
    "type": "not of type {types}",
    "minLength": "shorter than minLength {v}",
    "maxLength": "longer than maxLength {v}",
    "pattern": "does not match pattern {v!r}",
    "format": "not a valid {v!r} (format)",
    "enum": "not one of the values enum allows",
    "const": "not the value const requires",
    "minimum": "less than minimum {v}",
    "maximum": "greater than maximum {v}",
    "exclusiveMinimum": "not greater than exclusiveMinimum {v}",
    "exclusiveMaximum": "not less than exclusiveMaximum {v}",
    "multipleOf": "not a multiple of {v}",
    "minItems": "fewer items than minItems {v}",
    "maxItems": "more items than maxItems {v}",
    "uniqueItems": "items not unique (uniqueItems)",
    "contains": "no item matches contains",
    "minContains": "fewer items match contains than minContains {v}",
    "maxContains": "more items match contains than maxContains {v}",
    "minProperties": "fewer properties than minProperties {v}",
    "maxProperties": "more properties than maxProperties {v}",
    "required": "missing (required)",
    "dependentRequired": "missing (dependentRequired)",
    "dependencies": "missing (dependencies)",
    "additionalProperties": "not allowed (additionalProperties)",
    "unevaluatedProperties": "not allowed (unevaluatedProperties)",
    "unevaluatedItems": "not allowed (unevaluatedItems)",
    "propertyNames": "property name not allowed (propertyNames)",
    "items": "not allowed (items)",
    "prefixItems": "not allowed (prefixItems)",
    "not": "matches a schema that not forbids",
    "anyOf": "matches none of anyOf's schemas",
    "oneOf": "does not match exactly one of oneOf's schemas",
    "allOf": "does not match all of allOf's schemas",
    None: "not allowed (false schema)",
}


def _dotted(parts):
    return ".".join(str(part) for part in parts)


def _missing(error):
    """The property a required-like error is about: the first one absent from the record."""
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        wanted = error.validator_value
    elif error.validator in ("dependentRequired", "dependencies"):
        wanted = [
            dep
            for prop, deps in (error.validator_value or {}).items()
            if prop in instance and isinstance(deps, list)
            for dep in deps
        ]
    else:
        return None
    return next((name for name in wanted or () if name not in instance), None)


def _extra(error):
    """The first property additionalProperties (or unevaluatedProperties) does not allow."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    extras = sorted(str(key) for key in _additional(error.instance, error.schema))
    return extras[0] if extras else None


def _field_path(error):
    """The dotted path of the field a jsonschema error is about, or of the missing one."""
    path = _dotted(error.absolute_path)
    named = _missing(error) or _extra(error)
    if named is not None:
        return f"{path}.{named}" if path else str(named)
    return path or "(record)"


def _rule(error):
    """The failed rule in words, from the keyword and its value: never the record's value."""
    value = error.validator_value
    text = _RULES.get(error.validator)
    if text is None:
        return f"fails {error.validator!r}"
    types = value if isinstance(value, list) else [value]
    return text.format(v=value, types=", ".join(repr(t) for t in types))


def json_schema(record, ctx):
    """Validate the record against config["schema"]; the message names the failing field and
    the rule it breaks, never the value (which may be a secret: it would reach the DLQ, the
    error groups, the log and /metrics)."""
    schema = ctx.config.get("schema", {})
    error = best_match(validator_class(schema)(schema).iter_errors(record))
    if error is not None:
        raise RecordInvalid(f"Field '{_field_path(error)}': {_rule(error)}")


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
