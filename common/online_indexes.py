"""Index changes that do not block writers on PostgreSQL, and plain ones elsewhere.

The DLQ and occurrence tables can hold millions of rows on a live system: a
plain CREATE or DROP INDEX there would stop every worker's writes for the
length of the build. Django's own concurrent operations refuse other
databases, so these pass `concurrently=True` only on PostgreSQL. Migrations
that use them must set `atomic = False`.
"""

from django.db.migrations import AddIndex, RemoveIndex


class _Concurrently:
    """A schema editor whose index builds and drops run CONCURRENTLY."""

    def __init__(self, editor):
        self._editor = editor

    def __getattr__(self, name):
        return getattr(self._editor, name)

    def add_index(self, model, index):
        self._editor.add_index(model, index, concurrently=True)

    def remove_index(self, model, index):
        self._editor.remove_index(model, index, concurrently=True)


def _online(editor):
    return _Concurrently(editor) if editor.connection.vendor == "postgresql" else editor


class _Online:
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        super().database_forwards(app_label, _online(schema_editor), from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        super().database_backwards(app_label, _online(schema_editor), from_state, to_state)


class AddIndexOnline(_Online, AddIndex):
    """AddIndex, built CONCURRENTLY on PostgreSQL."""


class RemoveIndexOnline(_Online, RemoveIndex):
    """RemoveIndex, dropped CONCURRENTLY on PostgreSQL."""
