"""The original attempt lives in the entry's row until a failed requeue overwrites its error.

Entries already stored have their original attempt's row: they get True. The
column is added with a constant default, which PostgreSQL (11+) records in the
catalogue without rewriting the table; the default then becomes False, for
new entries (again only the catalogue changes).
"""

from django.db import migrations, models

HELP = (
    "Whether the original attempt has its own row in the attempt history; "
    "until then the entry's creation time, node and first error are that attempt."
)


class Migration(migrations.Migration):
    dependencies = [
        ("dlq", "0020_traceback_head"),
    ]

    operations = [
        migrations.AddField(
            model_name="dlqentry",
            name="original_attempt_stored",
            field=models.BooleanField(db_default=True, help_text=HELP),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="original_attempt_stored",
            field=models.BooleanField(default=False, db_default=False, help_text=HELP),
        ),
    ]
