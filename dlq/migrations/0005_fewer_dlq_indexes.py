"""Fewer indexes on the DLQ: 8 written per new entry instead of 16 (with 0004).

(job, status, created_at) gives way to (job, status, id), since a job's ids
follow its entries' creation times; and the indexes only requeues, retention
and the rarer statuses use become partial, so a new pending entry never
touches them. The new indexes are built (CONCURRENTLY on PostgreSQL) before
the old ones go, so no query is left without one.
"""

from django.db import migrations, models

from common.online_indexes import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dlq", "0004_unindexed_foreign_keys"),
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
        AddIndexOnline(
            model_name="dlqentry",
            index=models.Index(
                condition=models.Q(("status", "requeued")),
                fields=["claimed_until"],
                name="dlqentry_claim_expiry_idx",
            ),
        ),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_job_status_idx"),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_status_id_idx"),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_status_claim_idx"),
        RemoveIndexOnline(model_name="dlqentry", name="dlqentry_status_resolved_idx"),
    ]
