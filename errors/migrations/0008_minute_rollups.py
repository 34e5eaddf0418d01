"""Minute rollups and volumes: the last hour is charted per minute, six hours per 5 minutes.

Only the choices change in the schema. The last six hours (what those charts
show) are filled from the occurrences, which are kept for days, so the charts
are whole from the start. Stop the workers while migrating: failures a worker
still running the old code records afterwards would have no minute rows.
"""

from datetime import UTC, timedelta

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

PLACE = ("job_name", "node_id", "region", "version")
BUCKET = models.DateTimeField(help_text="The start of the minute, hour, day or week (Monday), in UTC.")
GRAIN = models.CharField(
    choices=[("m", "minute"), ("h", "hour"), ("d", "day"), ("w", "week")], default="h", max_length=1
)
FILLED = timedelta(hours=6)


def fill_minutes(apps, schema_editor):
    recent = apps.get_model("errors", "ErrorOccurrence").objects.filter(
        occurred_at__gte=timezone.now() - FILLED
    )
    for name, columns in (("ErrorRollup", ("group_id", *PLACE)), ("ErrorVolume", PLACE)):
        model = apps.get_model("errors", name)
        per_minute = (
            recent.annotate(bucket=TruncMinute("occurred_at", tzinfo=UTC))
            .values("bucket", *columns)
            .annotate(count=Count("pk"))
            .order_by()
        )
        model.objects.bulk_create(
            (model(grain="m", **row) for row in per_minute.iterator(chunk_size=5000)),
            batch_size=5000,
        )


def drop_minutes(apps, schema_editor):
    for name in ("ErrorRollup", "ErrorVolume"):
        apps.get_model("errors", name).objects.filter(grain="m").delete()


class Migration(migrations.Migration):
    dependencies = [("errors", "0007_group_dlq_pending")]

    operations = [
        *(
            migrations.AlterField(model_name=model, name=name, field=field)
            for model in ("errorrollup", "errorvolume")
            for name, field in (("bucket", BUCKET), ("grain", GRAIN))
        ),
        migrations.RunPython(fill_minutes, drop_minutes),
    ]
