"""Loading big tables fast: PostgreSQL COPY through Django's own psycopg connection.

Rows are written as COPY text lines built by the generators (which never put a
tab, a newline or a backslash in a value unescaped). A big load drops the
table's plain indexes first and builds them again afterwards, which is much
faster than maintaining ten indexes row by row; constraints stay.
"""

import time
from contextlib import contextmanager

from django.db import connection, transaction

CHUNK_LINES = 5000


def escape(text):
    """A value in COPY's text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_lines(table, columns, lines):
    """COPY an iterable of text lines into `table`; return how many were written."""
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # Generated rows are consistent by construction: skip the per-row FK triggers.
        cursor.execute("SET LOCAL session_replication_role = replica")
        pg_cursor = cursor.connection.cursor()
        with pg_cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            chunk = []
            for line in lines:
                chunk.append(line)
                if len(chunk) >= CHUNK_LINES:
                    copy.write("".join(chunk))
                    written += len(chunk)
                    chunk.clear()
            if chunk:
                copy.write("".join(chunk))
                written += len(chunk)
    return written


def _plain_indexes(cursor, table):
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = %s AND indexname NOT IN"
        " (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    return cursor.fetchall()


@contextmanager
def bulk_load(table, log):
    """Drop the table's plain indexes for the load, build them again and ANALYZE after it."""
    with connection.cursor() as cursor:
        indexes = _plain_indexes(cursor, table)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    started = time.monotonic()
    try:
        yield
    finally:
        log(f"  {table}: rows copied in {time.monotonic() - started:.0f}s; building indexes")
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")
        vacuum_analyze(table)
        log(
            f"  {table}: {len(indexes)} indexes built and analysed in "
            f"{time.monotonic() - started:.0f}s"
        )


def vacuum_analyze(*tables):
    """What autovacuum will have done by the time an operator looks: stats, visibility map."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def scalar(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
