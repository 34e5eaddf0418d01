# A job's error key: what its errors' fingerprints hash for the job, so renaming a
# job keeps its error groups and a new job with an old job's name starts clean.
# Jobs that exist keep their fingerprints: their key is the name they have now.

from django.db import migrations, models
from django.db.models import F

import dlq.models


def keys_are_names(apps, schema_editor):
    apps.get_model("dlq", "Job").objects.update(error_key=F("name"))


class Migration(migrations.Migration):

    dependencies = [
        ("dlq", "0018_dlqentry_error_message_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="error_key",
            field=models.CharField(default="", editable=False, max_length=100),
            preserve_default=False,
        ),
        migrations.RunPython(keys_are_names, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="job",
            name="error_key",
            field=models.CharField(
                default=dlq.models.new_error_key,
                editable=False,
                help_text="What its errors' fingerprints hash for the job: its history's, whatever its name (a job made before 0019 keeps the name it had then).",
                max_length=100,
                unique=True,
            ),
        ),
    ]
