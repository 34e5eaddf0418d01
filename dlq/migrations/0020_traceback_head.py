# Tracebacks stored per failure site: the frames a site's entries share, once (dlq.tracebacks);
# entries stored before keep theirs whole (no head).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dlq', '0019_job_error_key'),
    ]

    operations = [
        migrations.CreateModel(
            name='TracebackHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(help_text="The text's SHA-256, in hex: how a site is found.", max_length=64, unique=True)),
                ('text', models.TextField(help_text='The traceback up to, not including, its final line.')),
            ],
            options={
                'verbose_name': 'traceback head',
            },
        ),
        migrations.AlterField(
            model_name='dlqentry',
            name='traceback',
            field=models.TextField(blank=True, help_text="Its final line only, when its head is its site's (traceback_head)."),
        ),
        migrations.AddField(
            model_name='dlqentry',
            name='traceback_head',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='dlq.tracebackhead'),
        ),
    ]
