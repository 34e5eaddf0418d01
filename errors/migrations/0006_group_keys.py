# Groups remember the version of the grouping rules that made them. Every group
# gets a key for its own (version 1) fingerprint, and one for the version-2
# fingerprint of its last message, so the errors it held go on reaching it
# after the upgrade, whichever of them comes first.

import django.db.models.deletion
from django.db import migrations, models

# The rules of version 2. When they change again, point this at a frozen copy of them.
from errors import fingerprint as version_2

BACKFILL_KEYS = """
INSERT INTO errors_groupkey (fingerprint, group_id, grouping_version, template, created_at)
SELECT fingerprint, id, grouping_version, template, first_seen FROM errors_errorgroup
"""
CHUNK = 2000


def add_version_2_keys(apps, schema_editor):
    """A key per group for its last message under version 2; where two old groups would
    have the same key, the one seen last has it."""
    ErrorGroup = apps.get_model("errors", "ErrorGroup")
    GroupKey = apps.get_model("errors", "GroupKey")
    groups = ErrorGroup.objects.order_by("-last_seen", "-pk").values_list(
        "pk", "job_name", "error_type", "last_message", "last_seen"
    )
    last = None
    while True:
        page = groups if last is None else groups.filter(
            models.Q(last_seen__lt=last[0]) | models.Q(last_seen=last[0], pk__lt=last[1])
        )
        chunk = list(page[:CHUNK])
        if not chunk:
            return
        keys = []
        for pk, job_name, error_type, message, seen in chunk:
            template = version_2.normalize(message)
            keys.append(
                GroupKey(
                    fingerprint=version_2.fingerprint(job_name, error_type, template),
                    group_id=pk,
                    grouping_version=2,
                    template=template,
                    created_at=seen,
                )
            )
        GroupKey.objects.bulk_create(keys, ignore_conflicts=True)
        last = (chunk[-1][4], chunk[-1][0])


class Migration(migrations.Migration):

    dependencies = [
        ('errors', '0005_weekly_rollups'),
    ]

    operations = [
        # Every group that exists was made by version 1; new ones by the current version.
        migrations.AddField(
            model_name='errorgroup',
            name='grouping_version',
            field=models.PositiveSmallIntegerField(default=1, help_text='The version of the grouping rules that made it.'),
        ),
        migrations.AlterField(
            model_name='errorgroup',
            name='grouping_version',
            field=models.PositiveSmallIntegerField(default=2, help_text='The version of the grouping rules that made it.'),
        ),
        migrations.CreateModel(
            name='GroupKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(max_length=64, unique=True)),
                ('grouping_version', models.PositiveSmallIntegerField()),
                ('template', models.TextField(help_text='The template the fingerprint was made from.')),
                ('created_at', models.DateTimeField()),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='keys', to='errors.errorgroup')),
            ],
            options={
                'verbose_name': 'error group key',
            },
        ),
        migrations.RunSQL(BACKFILL_KEYS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunPython(add_version_2_keys, migrations.RunPython.noop),
    ]
