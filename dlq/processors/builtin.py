"""Velo's built-in processor: JSON Schema validation of each record (`json_schema`)."""

import jsonschema
from jsonschema.exceptions import best_match

from . import Processor


class RecordInvalid(ValueError):
    """A record that does not have the shape its job expects."""


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
    validator_class = jsonschema.validators.validator_for(schema)
    error = best_match(validator_class(schema).iter_errors(record))
    if error is not None:
        raise RecordInvalid(f"Field '{_field_path(error)}': {error.message}")


def check_schema_config(config):
    """A broken schema is refused when the job is saved, not by failing every record later."""
    schema = (config or {}).get("schema")
    if not isinstance(schema, dict):
        raise ValueError('json_schema needs config["schema"], a JSON Schema object')
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"config['schema'] is not a valid JSON Schema: {exc.message}") from None


PROCESSORS = (
    Processor("json_schema", json_schema, transactional=False, check_config=check_schema_config),
)
