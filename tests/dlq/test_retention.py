"""Retention (dlq.retention, `purge_expired`): only what is expired goes; counters stay."""

from datetime import timedelta
from io import StringIO

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from dlq import requeue, retention, tasks, triage
from dlq.actors import Actor
from dlq.models import DLQAttempt, DLQEntry, JobCounters
from dlq.requeue import RequeueOptions, RequeueScope
from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup, ErrorTotal, ErrorVolume
from tests.dlq.factories import SCHEMA, fail, relax, schema_job

OPS = Actor("ops", "admin")

pytestmark = pytest.mark.django_db


def resolve(job, entries):
    """Resolve entries the way operators do: fix the schema and requeue them."""
    relax(job)
    requeue.run_here(RequeueScope.of_ids([e.pk for e in entries]), RequeueOptions(), OPS)
    job.config = {"schema": SCHEMA}
    job.save()


def age(entries, days):
    DLQEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
        resolved_at=timezone.now() - timedelta(days=days)
    )


def alive(entries):
    return set(DLQEntry.objects.filter(pk__in=[e.pk for e in entries]).values_list("pk", flat=True))


def snapshot():
    """Every counter that /metrics and the API read."""
    return (
        list(JobCounters.objects.order_by("pk").values()),
        list(ErrorGroup.objects.order_by("pk").values_list("pk", "count", "status")),
        list(ErrorTotal.objects.order_by("pk").values_list("job_name", "occurrences")),
    )


@pytest.fixture
def dlq():
    """orders (14 days' retention) and audit (60 days) with entries in every state and age."""
    orders, audit = schema_job("orders"), schema_job("audit", dlq_retention_days=60)
    entries = fail(orders, 8)
    kept_by_audit = fail(audit, 1)
    # Each fails once more on a requeue, which gives its original attempt a row of its own.
    again = RequeueScope.of_ids([e.pk for e in entries + kept_by_audit])
    requeue.run_here(again, RequeueOptions(), OPS)
    old_resolved, new_resolved = entries[0:2], entries[2:3]
    old_discarded, new_discarded = entries[3:5], entries[5:6]
    old_pending = entries[6:8]
    resolve(orders, old_resolved + new_resolved)
    triage.discard(
        DLQEntry.objects.filter(pk__in=[e.pk for e in old_discarded + new_discarded]), actor=OPS
    )
    age(old_resolved + old_discarded, 20)
    age(new_resolved + new_discarded, 13)
    DLQEntry.objects.filter(pk__in=[e.pk for e in old_pending]).update(
        created_at=timezone.now() - timedelta(days=400)
    )
    resolve(audit, kept_by_audit)
    age(kept_by_audit, 20)
    return {
        "expired": old_resolved + old_discarded,
        "kept": new_resolved + new_discarded + old_pending + kept_by_audit,
    }


def test_purge_deletes_only_expired_resolved_and_discarded_entries(dlq):
    expired, kept = dlq["expired"], dlq["kept"]

    counts = retention.purge_expired()

    assert counts["dlq_entries"] == len(expired) == 4
    assert alive(expired) == set()
    assert alive(kept) == {e.pk for e in kept}
    assert not DLQAttempt.objects.filter(entry_id__in=[e.pk for e in expired]).exists()
    originals = DLQAttempt.objects.filter(kind="original", entry_id__in=[e.pk for e in kept])
    assert originals.count() == len(kept)


def test_purge_never_lowers_a_counter(dlq):
    before = snapshot()
    ErrorOccurrence.objects.update(occurred_at=timezone.now() - timedelta(days=365))
    ErrorRollup.objects.update(bucket=timezone.now() - timedelta(days=365))

    counts = retention.purge_expired()

    assert counts["occurrences"] > 0
    assert counts["rollups"] > 0
    assert snapshot() == before


def test_purging_counted_occurrences_reports_their_failures_and_leaves_every_total(db, client):
    job = schema_job("orders")
    fail(job, 1000)
    fail(job, 1)
    old, new = ErrorOccurrence.objects.order_by("pk")
    assert (old.count, new.count) == (1000, 1)
    ErrorOccurrence.objects.filter(pk=old.pk).update(
        occurred_at=timezone.now() - timedelta(days=60)
    )
    before = snapshot()
    metric = "velo_error_messages_total 1001.0"
    assert metric in client.get("/metrics").content.decode().splitlines()

    counts = retention.purge_expired()

    assert counts["occurrences"] == 1000  # failures, as the command prints them: not rows
    assert list(ErrorOccurrence.objects.values_list("pk", flat=True)) == [new.pk]
    assert snapshot() == before
    assert ErrorGroup.objects.get().count == 1001
    assert metric in client.get("/metrics").content.decode().splitlines()


def test_old_occurrences_and_rollups_go_by_their_own_settings(db):
    job = schema_job("orders")
    for _ in range(3):
        fail(job, 1)
    now = timezone.now()
    old, new, edge = ErrorOccurrence.objects.order_by("pk")
    ErrorOccurrence.objects.filter(pk=old.pk).update(occurred_at=now - timedelta(days=8))
    ErrorOccurrence.objects.filter(pk=edge.pk).update(occurred_at=now - timedelta(days=6))
    # This minute's, hour's, today's and this week's (kept: the week has not ended).
    current = set(ErrorRollup.objects.values_list("pk", flat=True))
    assert len(current) == 4
    group = ErrorRollup.objects.first().group
    ErrorRollup.objects.create(
        grain="w", bucket=now - timedelta(days=10), group=group, job_name="orders", count=5
    )
    for grain in ("h", "d"):
        ErrorRollup.objects.create(
            grain=grain,
            bucket=now - timedelta(days=3),
            group=group,
            job_name="orders",
            count=5,
            node_id="x",
        )
        ErrorVolume.objects.create(
            grain=grain, bucket=now - timedelta(days=3), job_name="orders", count=5, node_id="x"
        )
    # Minute rows serve the 1 h and 6 h charts only: kept hours, not days.
    for hours_ago, node in ((5, "kept"), (13, "x")):
        at = now - timedelta(hours=hours_ago)
        ErrorRollup.objects.create(
            grain="m", bucket=at, group=group, job_name="orders", count=2, node_id=node
        )
        ErrorVolume.objects.create(grain="m", bucket=at, job_name="orders", count=2, node_id=node)
    current |= set(ErrorRollup.objects.filter(node_id="kept").values_list("pk", flat=True))
    current_volumes = set(ErrorVolume.objects.exclude(node_id="x").values_list("pk", flat=True))
    assert len(current_volumes) == 4

    with override_settings(
        VELO_OCCURRENCE_RETENTION_DAYS=7,
        VELO_ROLLUP_RETENTION_DAYS=2,
        VELO_MINUTE_ROLLUP_RETENTION_HOURS=12,
    ):
        counts = retention.purge_expired(now=now)

    assert counts == {
        "dlq_entries": 0,
        "occurrences": 1,
        "rollups": 7,
        "job_activity": 0,
        "worker_instances": 0,
    }
    assert set(ErrorOccurrence.objects.values_list("pk", flat=True)) == {new.pk, edge.pk}
    assert set(ErrorRollup.objects.values_list("pk", flat=True)) == current
    assert set(ErrorVolume.objects.values_list("pk", flat=True)) == current_volumes


def test_defaults_keep_occurrences_30_days_and_rollups_90(db):
    assert settings.VELO_OCCURRENCE_RETENTION_DAYS == 30
    assert settings.VELO_ROLLUP_RETENTION_DAYS == 90


def test_each_chunk_is_deleted_in_its_own_transaction_without_loading_rows(dlq):
    with CaptureQueriesContext(connection) as queries:
        assert retention.purge_dlq_entries(timezone.now(), chunk=3) == 4

    sql = [q["sql"] for q in queries.captured_queries]
    deletes = [s for s in sql if s.startswith('DELETE FROM "dlq_dlqentry"')]
    assert len(deletes) == 2  # 4 expired entries in chunks of 3
    # Inside the test's transaction every chunk's atomic block is a savepoint.
    assert sum(s.startswith("SAVEPOINT") for s in sql) >= 2
    selects = [s for s in sql if s.startswith("SELECT") and '"dlq_dlqentry"' in s]
    assert not any('"payload"' in s or '"traceback"' in s for s in selects)


def test_a_retention_of_zero_days_purges_every_resolved_entry(db):
    job = schema_job("orders", dlq_retention_days=0)
    entries = fail(job, 2)
    resolve(job, entries[:1])

    assert retention.purge_expired()["dlq_entries"] == 1
    assert alive(entries) == {entries[1].pk}


def test_the_command_prints_counts_per_kind(dlq):
    out = StringIO()

    call_command("purge_expired", "--chunk-size", "2", stdout=out)

    text = out.getvalue()
    assert "4  resolved/discarded DLQ entries" in text
    assert "error occurrences (older than 30 days)" in text
    assert "error rollups and volumes (older than 90 days)" in text
    assert alive(dlq["expired"]) == set()


def test_the_task_purges_and_beat_runs_it_daily(dlq):
    assert tasks.purge_expired()["dlq_entries"] == 4  # the task body, called in-process

    (entry,) = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.purge_expired.name
    ]
    assert tasks.purge_expired.name == "dlq.purge_expired"
    assert entry["schedule"] == crontab(hour=3, minute=0)
