"""Occurrences are counted: a row stands for the failures of one group with one message in one
batch attempt on one node (SPEC §3), so it can no longer name one DLQ entry.

Every row written before stands for one failure (the new column's default). The
entry index is dropped (CONCURRENTLY on PostgreSQL) before its column; adding a
column with a constant default and dropping one rewrite no table on PostgreSQL; the count
has no CHECK, which PostgreSQL would verify by reading every existing row under the lock.
"""

from django.db import migrations, models

from common.online_indexes import RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("errors", "0009_group_job_id"),
    ]

    operations = [
        RemoveIndexOnline(
            model_name="erroroccurrence",
            name="erroccur_entry_idx",
        ),
        migrations.RemoveField(
            model_name="erroroccurrence",
            name="dlq_entry_id",
        ),
        migrations.AddField(
            model_name="erroroccurrence",
            name="count",
            field=models.IntegerField(
                db_default=1, default=1, help_text="The failures it stands for."
            ),
        ),
    ]
