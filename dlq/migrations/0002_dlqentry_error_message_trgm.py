"""A trigram index on DLQ error messages, so the admin's message search uses an index.

PostgreSQL only (SQLite has no trigram index; there the search scans). The
admin searches with ILIKE, which gin_trgm_ops serves; Django's icontains
(UPPER(...) LIKE) could not use it. Built CONCURRENTLY, outside a
transaction, so DLQ writers are not blocked while a big table is indexed.
"""

from django.db import migrations

INDEX = "dlqentry_errmsg_trgm_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # A concurrent build that was interrupted leaves an invalid index that
        # IF NOT EXISTS would keep: drop it and build again.
        cursor.execute(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [INDEX]
        )
        row = cursor.fetchone()
        if row and row[0]:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
            "ON dlq_dlqentry USING gin (error_message gin_trgm_ops)"
        )


def drop_index(apps, schema_editor):
    # The extension stays: other indexes or databases' objects may use it.
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dlq", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
