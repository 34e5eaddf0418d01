"""Per-minute job activity (the last hour's failure rate), a per-job warning threshold,
and each error group's DLQ backlog counted from the entries it holds."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


OPEN = ("pending", "requeued")  # what JobCounters.dlq_pending counts


def count_backlogs(apps, schema_editor):
    """One UPDATE: every group's open entries, read through the (error_group, ...) index.

    The query of dlq.backlog.recount, written again on the historical models a
    migration must use (the app's code may change after this migration).
    """
    ErrorGroup = apps.get_model("errors", "ErrorGroup")
    DLQEntry = apps.get_model("dlq", "DLQEntry")
    open_entries = (
        DLQEntry.objects.filter(error_group=OuterRef("pk"), status__in=OPEN)
        .order_by()
        .values("error_group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    ErrorGroup.objects.update(dlq_pending=Coalesce(Subquery(open_entries), 0))


class Migration(migrations.Migration):

    dependencies = [
        ('dlq', '0008_grouping_rules_and_regroup_runs'),
        ('errors', '0007_group_dlq_pending'),
    ]

    operations = [
        migrations.RunPython(count_backlogs, migrations.RunPython.noop, elidable=True),
        migrations.AddField(
            model_name='job',
            name='failure_rate_warning_percent',
            field=models.FloatField(db_default=5.0, default=5.0, help_text="The DLQ health page warns when the last hour's failure rate reaches this.", validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(100)]),
        ),
        migrations.CreateModel(
            name='JobActivity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('minute', models.DateTimeField(help_text='The start of the minute, in UTC.')),
                ('records_processed', models.BigIntegerField(default=0)),
                ('records_failed', models.BigIntegerField(default=0)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activity', to='dlq.job')),
            ],
            options={
                'verbose_name_plural': 'job activity',
                'indexes': [models.Index(fields=['minute'], name='jobactivity_minute_idx')],
                'constraints': [models.UniqueConstraint(fields=('job', 'minute'), name='jobactivity_job_minute_uniq')],
            },
        ),
    ]
