"""Writing many rows fast: COPY where available, bulk_create elsewhere; and counter upserts.

Django 5.2's bulk_create on PostgreSQL goes through UNNEST of arrays, and
psycopg's text-array escaping of JSON costs most of the time (FIELD-NOTES:
~3,800 rows/s against ~34,000 with COPY); building a model instance per row
costs as much again. So rows come in as plain column values, and COPY runs on
Django's own connection, inside the caller's transaction. Ids are taken from
the table's sequence first, so new rows can refer to each other (an
attempt row points at its DLQ entry) without being read back.
"""

import json

from django.db import IntegrityError, connections, models, router, transaction

# Values bound in one merge statement, at most: well under SQLite's 32,766.
MERGE_PARAMETERS = 10_000


def merge_rows(model, rows, *, key, add=(), replace=()):
    """Insert rows, or where one with the same `key` exists, add to its `add` fields and
    overwrite its `replace` fields: one INSERT ... ON CONFLICT for every row.

    For counter rows: atomic and race-free on PostgreSQL and SQLite (3.24+), in
    one round trip where `upsert` takes one or more per row. Rows are written
    in key order, so two writers touching the same rows lock them in the same
    order; no two rows may share a key. A statement holds at most
    MERGE_PARAMETERS values (SQLite's default build allows 32,766).
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in rows[0]]
    table = quote(meta.db_table)

    def column(name):
        return quote(meta.get_field(name).column)

    updates = [f"{column(n)} = {table}.{column(n)} + EXCLUDED.{column(n)}" for n in add] + [
        f"{column(n)} = EXCLUDED.{column(n)}" for n in replace
    ]
    values = "(" + ", ".join(["%s"] * len(fields)) + ")"
    key_names = [meta.get_field(name).attname for name in key]
    ordered = sorted(rows, key=lambda row: tuple(str(row[name]) for name in key_names))
    per_statement = max(1, MERGE_PARAMETERS // len(fields))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), per_statement):
            chunk = ordered[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)})"
                f" VALUES {', '.join([values] * len(chunk))}"
                f" ON CONFLICT ({', '.join(column(name) for name in key)})"
                f" DO UPDATE SET {', '.join(updates)}",
                [f.get_db_prep_save(row[f.attname], connection) for row in chunk for f in fields],
            )


def update_rows(model, rows, *, add=(), replace=()):
    """Add to the `add` fields and overwrite the `replace` fields of existing rows, found by
    their "pk": one UPDATE ... FROM for every MERGE_PARAMETERS values, where the ORM takes
    a statement (and Django's query building, about half its cost) per row.

    Several rows are locked first in pk order (PostgreSQL; SQLite has one writer), so two
    writers touching the same rows cannot deadlock; a pk with no row changes nothing.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    names = [*add, *replace]
    fields = [meta.pk, *(meta.get_field(name) for name in names)]
    postgres = connection.vendor == "postgresql"

    def value(field):
        # PostgreSQL types a bare parameter in VALUES as text; SQLite needs no cast (and
        # CAST AS datetime would make a number of a date).
        return f"CAST(%s AS {field.db_type(connection)})" if postgres else "%s"

    def column(name):
        return quote(meta.get_field(name).column)

    # VALUES names its columns column1, column2, ... on PostgreSQL and SQLite alike (and,
    # unlike a UNION of SELECTs, has no limit of terms on SQLite).
    v = {name: f"v.column{n}" for n, name in enumerate(["pk", *names], start=1)}
    sets = [f"{column(n)} = {table}.{column(n)} + {v[n]}" for n in add]
    sets += [f"{column(n)} = {v[n]}" for n in replace]
    row_values = "(" + ", ".join(value(f) for f in fields) + ")"
    ordered = sorted(rows, key=lambda row: row["pk"])
    per_statement = max(1, MERGE_PARAMETERS // len(fields))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), per_statement):
            chunk = ordered[start : start + per_statement]
            keys = [row["pk"] for row in chunk]
            if postgres and len(chunk) > 1:
                marks = ", ".join(["%s"] * len(keys))
                cursor.execute(
                    f"SELECT 1 FROM {table} WHERE {pk} IN ({marks}) ORDER BY {pk} FOR UPDATE",
                    keys,
                )
            cursor.execute(
                f"UPDATE {table} SET {', '.join(sets)}"
                f" FROM (VALUES {', '.join([row_values] * len(chunk))}) AS v"
                f" WHERE {table}.{pk} = {v['pk']}",
                [
                    f.get_db_prep_save(row[name], connection)
                    for row in chunk
                    for f, name in zip(fields, ["pk", *names], strict=True)
                ],
            )


def upsert(model, key, changes, initial):
    """Update the row at `key` with `changes` (F() increments), or create it with `initial`.

    Portable (SQLite and PostgreSQL) and race-safe: if another worker creates
    the row first, the create fails in its own savepoint and the update runs.
    """
    if model.objects.filter(**key).update(**changes):
        return
    try:
        with transaction.atomic():
            model.objects.create(**key, **initial)
    except IntegrityError:
        model.objects.filter(**key).update(**changes)


def insert_rows(model, rows):
    """Insert rows given as {attname: value} dicts; return their ids, in order.

    A column a row leaves out gets the field's default.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in rows[0]}
    if connection.vendor != "postgresql":
        created = model.objects.bulk_create(
            [model(**defaults, **row) for row in rows], batch_size=1000
        )
        return [obj.pk for obj in created]
    # Per column: its name, the default for rows that leave it out, and
    # whether it is JSON; worked out once, not for each row.
    spec = [(f.attname, defaults.get(f.attname)) for f in fields]
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in [meta.pk.column] + [f.column for f in fields])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            dumps, write_row = json.dumps, copy.write_row
            for pk, row in zip(ids, rows, strict=True):
                values = [row.get(name, default) for name, default in spec]
                for i in json_positions:
                    if values[i] is not None:
                        values[i] = dumps(values[i])
                write_row((pk, *values))
    return ids
