"""Velo's built-in processors: JSON Schema validation and the demo pipelines."""

import time
from decimal import Decimal, InvalidOperation

import jsonschema
from jsonschema.exceptions import best_match

from .processors import TransientFailure, processor


class RecordInvalid(ValueError):
    """A record that does not have the shape its job expects."""


def _field_path(error):
    """The dotted path of the field a jsonschema error is about, or of the missing one."""
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{path}.{missing}" if path else missing
    return path or "(record)"


@processor("json_schema", transactional=False)
def json_schema(record, ctx):
    """Validate the record against config["schema"]; the message names the failing field."""
    schema = ctx.config.get("schema", {})
    validator_class = jsonschema.validators.validator_for(schema)
    error = best_match(validator_class(schema).iter_errors(record))
    if error is not None:
        raise RecordInvalid(f"Field '{_field_path(error)}': {error.message}")


@processor("demo.trades", transactional=False)
def trades(record, ctx):
    """The demo pipeline: a trade needs a string symbol and a numeric price."""
    if not isinstance(record, dict):
        raise RecordInvalid(f"Expected a JSON object, got {type(record).__name__}")
    for column in ("symbol", "price"):
        if column not in record:
            raise RecordInvalid(f"Missing required column '{column}'")
    if not isinstance(record["symbol"], str) or not record["symbol"]:
        raise RecordInvalid("Invalid value in 'symbol' field: expected a non-empty string")
    price = record["price"]
    if isinstance(price, bool):
        raise RecordInvalid("Invalid JSON in 'price' field")
    if not isinstance(price, int | float):
        try:
            Decimal(str(price))
        except InvalidOperation:
            raise RecordInvalid("Invalid JSON in 'price' field") from None
        raise RecordInvalid("Invalid JSON in 'price' field: expected a number, got a string")


@processor("demo.flaky", transactional=False)
def flaky(record, ctx):
    """Fail while ctx.attempt <= config["fail_attempts"], then succeed."""
    if ctx.attempt <= int(ctx.config.get("fail_attempts", 1)):
        raise TransientFailure(f"Transient failure (attempt {ctx.attempt})")


@processor("demo.slow", transactional=False)
def slow(record, ctx):
    """Sleep config["seconds"] per record, then succeed."""
    time.sleep(float(ctx.config.get("seconds", 1.0)))
