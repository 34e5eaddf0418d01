"""A rate-limited requeue run waits between chunks as a due time in its row, not in a worker."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dlq", "0013_time_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="requeuerun",
            name="next_attempt_at",
            field=models.DateTimeField(
                blank=True,
                help_text="A rate-limited run waiting for its next chunk is due then; no worker "
                "holds it meanwhile (set only while it waits).",
                null=True,
            ),
        ),
    ]
