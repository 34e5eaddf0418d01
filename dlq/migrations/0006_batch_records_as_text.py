"""Batch records as JSON text instead of jsonb: PostgreSQL no longer parses and prints them.

The records are written once, read back whole and never queried into; jsonb
cost ~4 ms of database CPU per 1,000-record batch. On PostgreSQL this
rewrites dlq_batch (ALTER COLUMN ... TYPE text), holding its lock meanwhile:
on a large installation, run it when no batches are being submitted.
"""

from django.db import migrations

import dlq.fields


class Migration(migrations.Migration):
    dependencies = [
        ("dlq", "0005_fewer_dlq_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="batch",
            name="records",
            field=dlq.fields.JSONTextField(help_text="The submitted records, in order."),
        ),
    ]
