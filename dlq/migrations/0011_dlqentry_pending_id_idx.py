"""The DLQ list opens on the pending entries, newest first: a partial index on their ids.

Without it, the page walks the primary key backwards and reads every newer
entry that is not pending (after a clean-up, nearly all of them); with it, the
page and its bounded count read only pending ids. Built CONCURRENTLY on
PostgreSQL, so workers keep writing meanwhile.
"""

from django.db import migrations, models

from common.online_indexes import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dlq", "0010_bulk_fix"),
    ]

    operations = [
        AddIndexOnline(
            model_name="dlqentry",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["id"],
                name="dlqentry_pending_id_idx",
            ),
        ),
    ]
