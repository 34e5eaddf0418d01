"""Each error group's DLQ backlog, kept by the DLQ; an index for the health page's top errors."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('errors', '0006_group_keys'),
    ]

    operations = [
        migrations.AddField(
            model_name='errorgroup',
            name='dlq_pending',
            field=models.BigIntegerField(db_default=0, default=0, verbose_name='waiting in the DLQ', help_text='Its DLQ entries not resolved or discarded yet (kept by the DLQ as they change).'),
        ),
        migrations.AddIndex(
            model_name='errorgroup',
            index=models.Index(fields=['job_name', 'dlq_pending', 'count'], name='errgroup_job_backlog_idx'),
        ),
    ]
