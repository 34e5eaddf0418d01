"""Occurrences: the group foreign key's own index goes; (group, occurred_at) serves it.

One index fewer to write per recorded failure.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0002_daily_rollups_and_places"),
    ]

    operations = [
        migrations.AlterField(
            model_name="erroroccurrence",
            name="group",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="occurrences",
                to="errors.errorgroup",
            ),
        ),
    ]
