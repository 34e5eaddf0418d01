"""The DLQ's foreign keys lose their own indexes: composite indexes lead with the same columns.

Every failed record writes each index of dlq_dlqentry, and each requeue
rewrites the row twice (its status is indexed, so no update is HOT).
(job, status, id), (batch, index) and (error_group, status, id) serve the
joins, lookups and cascades the single-column indexes served; (entry, at)
does for attempts. In one transaction: on SQLite each change rebuilds the
table, which must never be left half done; on PostgreSQL dropping an index
is quick (its lock is held only for the drop).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dlq", "0003_batch_duration_histogram"),
        ("errors", "0003_occurrence_group_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dlqentry",
            name="job",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dlq_entries",
                to="dlq.job",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="batch",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dlq_entries",
                to="dlq.batch",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="error_group",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="dlq_entries",
                to="errors.errorgroup",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="requeue_run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="dlq.requeuerun",
            ),
        ),
        migrations.AlterField(
            model_name="dlqattempt",
            name="entry",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="history",
                to="dlq.dlqentry",
            ),
        ),
        migrations.AlterField(
            model_name="dlqattempt",
            name="requeue_run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="attempts",
                to="dlq.requeuerun",
            ),
        ),
    ]
