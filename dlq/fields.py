"""JSON the database keeps but never looks inside, stored as text."""

import json

from django import forms
from django.db import models


class StoredJSON(str):
    """A JSON document already written the way JSONTextField stores it.

    Submitting a batch serialises its records once to check them
    (dlq.ingest.records); storing that same text saves doing it again.
    """

    @classmethod
    def of(cls, value):
        return cls(json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


class JSONTextField(models.TextField):
    """A JSON document in a text column.

    A batch's records are written once, read back whole by the worker, and
    never queried into. As PostgreSQL jsonb they were parsed on the way in and
    printed on the way out: ~4 ms of database CPU for a 1,000-record batch, a
    third of all the database's work per batch. As text they cost neither.
    """

    description = "JSON document stored as text"

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        return value

    def get_prep_value(self, value):
        if value is None or isinstance(value, StoredJSON):
            return value
        return StoredJSON.of(value)

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})
