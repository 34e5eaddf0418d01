"""The keys of a DLQ entry (and of its attempts) stop being database constraints.

PostgreSQL checked each at commit, a locked lookup of the parent per key per
failed record: as much again as writing the rows in a storm. Django's collector
still cascades and protects on every delete (dlq.models.ENTRY_KEYS). Dropping
a constraint takes a brief lock of the table and rewrites nothing.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dlq", "0021_dlqentry_original_attempt_stored"),
        ("errors", "0010_occurrence_count"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dlqattempt",
            name="entry",
            field=models.ForeignKey(
                db_constraint=False,
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
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="attempts",
                to="dlq.requeuerun",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="batch",
            field=models.ForeignKey(
                db_constraint=False,
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
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="dlq_entries",
                to="errors.errorgroup",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="job",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dlq_entries",
                to="dlq.job",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="requeue_run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="dlq.requeuerun",
            ),
        ),
        migrations.AlterField(
            model_name="dlqentry",
            name="traceback_head",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="dlq.tracebackhead",
            ),
        ),
    ]
