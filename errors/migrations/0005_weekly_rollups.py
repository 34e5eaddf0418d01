"""Weekly rollups, filled from the daily ones: ranking groups over a month reads whole weeks.

At 10M occurrences over 30 days, ranking every group for /errors/?range=30d
summed 136,000 daily rows; whole weeks plus the days around them is about
half as many. Stop the workers while migrating: failures a worker still
running the old code records afterwards would be missing from the weeks.
"""

from datetime import UTC, timedelta

from django.db import migrations, models
from django.db.models import Sum

PLACE = ("group_id", "job_name", "node_id", "region", "version")
BUCKET = models.DateTimeField(
    help_text="The start of the hour, of the day, or of the week (Monday), in UTC."
)
GRAIN = models.CharField(
    choices=[("h", "hour"), ("d", "day"), ("w", "week")], default="h", max_length=1
)


def fill_weeks(apps, schema_editor):
    rollups = apps.get_model("errors", "ErrorRollup")
    weeks = {}
    days = rollups.objects.filter(grain="d").values("bucket", *PLACE).annotate(n=Sum("count"))
    for row in days.iterator(chunk_size=5000):
        day = row["bucket"].astimezone(UTC)
        key = (day - timedelta(days=day.weekday()), *(row[name] for name in PLACE))
        weeks[key] = weeks.get(key, 0) + row["n"]
    rollups.objects.bulk_create(
        [
            rollups(grain="w", bucket=week, count=n, **dict(zip(PLACE, place, strict=True)))
            for (week, *place), n in weeks.items()
        ],
        batch_size=5000,
    )


def drop_weeks(apps, schema_editor):
    apps.get_model("errors", "ErrorRollup").objects.filter(grain="w").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0004_error_volume"),
    ]

    operations = [
        migrations.AlterField(model_name="errorrollup", name="grain", field=GRAIN),
        migrations.AlterField(model_name="errorvolume", name="grain", field=GRAIN),
        migrations.AlterField(model_name="errorrollup", name="bucket", field=BUCKET),
        migrations.AlterField(model_name="errorvolume", name="bucket", field=BUCKET),
        migrations.RunPython(fill_weeks, drop_weeks, elidable=True),
    ]
