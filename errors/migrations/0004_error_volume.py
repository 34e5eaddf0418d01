"""Error volumes: occurrences per bucket and place, all groups together.

The history's total line read every group's rollups in the window; it now
reads the volumes, filled here from the rollups already stored. Stop the
workers while migrating: failures a worker still running the old code
records afterwards would be in the rollups but not in the volumes.
"""

from django.db import migrations, models
from django.db.models import Sum

PLACE = ("grain", "bucket", "job_name", "node_id", "region", "version")


def fill_volumes(apps, schema_editor):
    rollups = apps.get_model("errors", "ErrorRollup")
    volumes = apps.get_model("errors", "ErrorVolume")
    rows = rollups.objects.values(*PLACE).annotate(n=Sum("count")).order_by(*PLACE)
    batch = []
    for row in rows.iterator(chunk_size=5000):
        batch.append(volumes(**{key: row[key] for key in PLACE}, count=row["n"]))
        if len(batch) >= 5000:
            volumes.objects.bulk_create(batch)
            batch.clear()
    volumes.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0003_occurrence_group_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="ErrorVolume",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("grain", models.CharField(choices=[("h", "hour"), ("d", "day")], default="h", max_length=1)),
                (
                    "bucket",
                    models.DateTimeField(help_text="The start of the hour, or of the day (UTC)."),
                ),
                ("job_name", models.CharField(max_length=100)),
                ("node_id", models.CharField(blank=True, max_length=200)),
                ("region", models.CharField(blank=True, max_length=100)),
                ("version", models.CharField(blank=True, max_length=100)),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={"verbose_name": "error volume"},
        ),
        migrations.AddIndex(
            model_name="errorvolume",
            index=models.Index(fields=["bucket"], name="errvolume_purge_idx"),
        ),
        migrations.AddConstraint(
            model_name="errorvolume",
            constraint=models.UniqueConstraint(
                fields=PLACE, name="errvolume_bucket_place_uniq"
            ),
        ),
        migrations.RunPython(fill_volumes, migrations.RunPython.noop, elidable=True),
    ]
