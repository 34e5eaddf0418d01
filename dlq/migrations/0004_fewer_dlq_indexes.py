"""Fewer indexes on the DLQ: 8 written per new entry instead of 16.

Every failed record writes each index of dlq_dlqentry, and each requeue
rewrites the row twice (its status is indexed, so no update is HOT). The
foreign keys' own indexes duplicated composite indexes that lead with the
same column; (job, status, created_at) gave way to (job, status, id), since
a job's ids follow its entries' creation times; and the indexes only
requeues, retention and the rarer statuses use became partial, so a new
pending entry never touches them. The new indexes are built (CONCURRENTLY on
PostgreSQL) before the old ones go, so no query is left without one.
"""

import django.db.models.deletion
from django.db import migrations, models

from errors.online_indexes import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dlq", "0003_batch_duration_histogram"),
        ("errors", "0003_occurrence_group_index"),
    ]

    operations = [
        AddIndexOnline(
            model_name="dlqentry",
            index=models.Index(
                condition=models.Q(("status__in", ["requeued", "resolved", "discarded"])),
                fields=["status", "id"],
                name="dlqentry_not_pending_idx",
            ),
        ),
        AddIndexOnline(
            model_name="dlqentry",
            index=models.Index(
                condition=models.Q(("status__in", ["resolved", "discarded"])),
                fields=["job", "id"],
                name="dlqentry_purgeable_idx",
            ),
        ),
        AddIndexOnline(
            model_name="dlqentry",
            index=models.Index(
                condition=models.Q(("requeue_run__isnull", False)),
                fields=["requeue_run"],
                name="dlqentry_requeue_run_idx",
            ),
        ),
        AddIndexOnline(
            model_name="dlqattempt",
            index=models.Index(
                condition=models.Q(("requeue_run__isnull", False)),
                fields=["requeue_run"],
                name="dlqattempt_requeue_run_idx",
            ),
        ),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_job_status_idx"),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_status_id_idx"),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_status_claim_idx"),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_status_resolved_idx"),
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
