"""Fixtures of the admin tests: logged-in clients, a json_schema job whose records fail until
its schema is relaxed, and entries made by the engine or written directly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dlq import history
from dlq.models import Batch, DLQEntry
from errors.models import ErrorGroup, ErrorOccurrence
from tests.conftest import BAD

from .helpers import SCRIPT, STRICT


@pytest.fixture
def admin_client_(login):
    return login(superuser=True)


@pytest.fixture
def job(make_job):
    """A json_schema job: its records fail until its schema is relaxed."""
    return make_job("orders", processor="json_schema", config={"schema": STRICT}, dlq_max_size=100)


@pytest.fixture
def fail(run_batch, job):
    """Submit `n` bad records and let the engine put them in the DLQ; return the entries."""

    def make(n, target=None):
        batch = run_batch(target or job, [BAD] * n)
        return list(DLQEntry.objects.filter(batch=batch).order_by("pk"))

    return make


@pytest.fixture
def batch(job):
    records = [{"symbol": "ACME", "price": n} for n in range(100)]
    return Batch.objects.create(
        job=job, records=records, record_count=len(records), status=Batch.Status.PARTIAL
    )


@pytest.fixture
def group(job):
    now = timezone.now()
    return ErrorGroup.objects.create(
        fingerprint="f" * 64,
        job_name=job.name,
        error_type="KeyError",
        template="Missing required column 'symbol' in row <int>",
        last_message="Missing required column 'symbol' in row 7",
        count=3,
        first_seen=now - timedelta(hours=1),
        last_seen=now,
    )


@pytest.fixture
def make_entries(job, batch, group):
    def make(count, payload=None):
        now = timezone.now()
        start = DLQEntry.objects.count()
        return DLQEntry.objects.bulk_create(
            DLQEntry(
                job=job,
                batch=batch,
                index=start + n,
                payload=payload or {"price": n},
                error_message=f"Missing required column 'symbol' in row {n}",
                error_type="KeyError",
                traceback="Traceback (most recent call last):\n  KeyError: 'symbol'",
                error_group=group,
                node_id="node-1",
                node_name="worker-a",
                region="eu-west-1",
                version="1.0.0",
                created_at=now,
                last_attempt_at=now,
            )
            for n in range(count)
        )

    return make


@pytest.fixture
def entry(make_entries):
    """An entry as the engine stores one: its own row is its original attempt (dlq.history)."""
    [entry] = make_entries(1, payload={"note": SCRIPT, "price": 1})
    return entry


@pytest.fixture
def attempt(entry):
    """The entry's original attempt in a row of its own, as a requeue that failed leaves it."""
    history.store_originals([entry.pk])
    DLQEntry.objects.filter(pk=entry.pk).update(original_attempt_stored=True)
    entry.original_attempt_stored = True
    return entry.history.get()


@pytest.fixture
def occurrence(group, batch, entry):
    return ErrorOccurrence.objects.create(
        group=group,
        occurred_at=timezone.now(),
        job_name=group.job_name,
        message="Missing required column 'symbol' in row 7",
        batch_id=batch.pk,
        count=3,
        node_id="node-1",
        node_name="worker-a",
        region="eu-west-1",
        version="1.0.0",
    )
