# Error groups name their job by id: a renamed job keeps its groups, a new job with
# an old name gets none of them. A group takes the id of the job that has its name
# now (that job's error key, dlq 0019, is that name, so its fingerprints still
# lead here); the groups of a job that is gone keep no id.

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def ids_from_names(apps, schema_editor):
    Job = apps.get_model("dlq", "Job")
    ErrorGroup = apps.get_model("errors", "ErrorGroup")
    ErrorGroup.objects.update(
        job_id=Subquery(Job.objects.filter(name=OuterRef("job_name")).values("pk")[:1])
    )


class Migration(migrations.Migration):

    dependencies = [
        ('errors', '0008_minute_rollups'),
        ('dlq', '0019_job_error_key'),
    ]

    operations = [
        migrations.AddField(
            model_name='errorgroup',
            name='job_id',
            field=models.BigIntegerField(blank=True, help_text="The job's id.", null=True),
        ),
        migrations.AlterField(
            model_name='errorgroup',
            name='job_name',
            field=models.CharField(help_text='The job whose records failed (its name now: kept on rename).', max_length=100),
        ),
        migrations.AddIndex(
            model_name='errorgroup',
            index=models.Index(fields=['job_id', 'dlq_pending', 'count'], name='errgroup_jobid_backlog_idx'),
        ),
        migrations.RunPython(ids_from_names, migrations.RunPython.noop, elidable=True),
    ]
