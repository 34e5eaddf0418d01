"""django_db_* metrics: the database backends are django-prometheus' (issue 13, finding 8).

settings.DATABASES names django_prometheus.db.backends.<vendor> for PostgreSQL and SQLite,
so /metrics counts queries, errors and connections per alias and vendor.
"""

import pytest
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from dlq.models import Job
from velo_site.settings import _database

pytestmark = pytest.mark.django_db


def samples(client, name):
    text = client.get("/metrics").content.decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_metrics_count_the_queries_the_app_makes(client):
    Job.objects.create(name="orders", processor="demo.trades")
    before = samples(client, "django_db_execute_total")
    assert before, "no django_db_execute_total on /metrics"
    key = (("alias", "default"), ("vendor", connection.vendor))
    for _ in range(3):
        Job.objects.filter(name="orders").exists()
    after = samples(client, "django_db_execute_total")
    # The three queries, plus whatever /metrics itself reads from the database.
    assert after[key] >= before.get(key, 0) + 3


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("sqlite:///var/x.sqlite3", "django_prometheus.db.backends.sqlite3"),
        ("postgres://velo@db:5432/velo", "django_prometheus.db.backends.postgresql"),
    ],
)
def test_database_urls_get_the_instrumented_backends(url, engine):
    assert _database(url)["ENGINE"] == engine


def test_sqlite_keeps_wal_and_the_busy_timeout_under_the_instrumented_backend():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite leg checks SQLite's tuning")
    assert settings.DATABASES["default"]["ENGINE"] == "django_prometheus.db.backends.sqlite3"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 30_000
