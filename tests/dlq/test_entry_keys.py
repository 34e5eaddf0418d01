"""A DLQ entry's keys are not database constraints (dlq.models.ENTRY_KEYS): a storm no
longer pays a locked parent lookup per key per failed record at commit. What the
constraints guarded, Django's collector does on every delete: a job takes its batches,
entries and their attempts with it; a group that still holds entries cannot go."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.db.models import ProtectedError

from dlq import requeue
from dlq.actors import Actor
from dlq.models import Batch, DLQAttempt, DLQEntry, Job
from dlq.requeue import RequeueOptions, RequeueScope
from errors.models import ErrorGroup
from tests.dlq.factories import failing_entries

pytestmark = pytest.mark.django_db


def _constraints(table):
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def test_the_entry_and_attempt_tables_hold_no_foreign_key_constraint():
    for table in (DLQEntry._meta.db_table, DLQAttempt._meta.db_table):
        keys = [name for name, c in _constraints(table).items() if c["foreign_key"]]
        assert keys == [], (table, keys)


def test_deleting_a_job_takes_its_batches_entries_and_attempts():
    job = failing_entries(3)
    requeue.run_here(RequeueScope.matching(job=job.name), RequeueOptions(), Actor("ops", "admin"))
    assert DLQAttempt.objects.filter(entry__job=job).exists()
    other = failing_entries(2, name="payments")

    Job.objects.filter(pk=job.pk).delete()

    assert not Batch.objects.filter(job_id=job.pk).exists()
    assert not DLQEntry.objects.filter(job_id=job.pk).exists()
    assert DLQAttempt.objects.exclude(entry_id__in=DLQEntry.objects.values("pk")).count() == 0
    assert DLQEntry.objects.filter(job=other).count() == 2


def test_a_group_that_holds_entries_cannot_be_deleted():
    job = failing_entries(2)
    group = ErrorGroup.objects.get(job_id=job.pk)

    with pytest.raises(ProtectedError):
        group.delete()

    assert DLQEntry.objects.filter(error_group=group).count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL row locks")
def test_a_job_deleted_while_a_worker_stores_its_failures_takes_them_too():
    """The worker holds its batch locked while it stores entries; the deletion waits for it
    and then collects what it stored: no entry is left without its job."""
    job = failing_entries(1)
    batch = Batch.objects.get(job=job)
    entry = DLQEntry.objects.get(job=job)
    holding, stored = threading.Event(), []

    def worker():
        try:
            with transaction.atomic():
                list(Batch.objects.select_for_update().filter(pk=batch.pk).values("pk"))
                holding.set()
                time.sleep(1.0)
                copy = DLQEntry.objects.filter(pk=entry.pk).values()[0]
                copy.pop("id")
                stored.append(DLQEntry.objects.create(**{**copy, "index": 99}).pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    assert holding.wait(10)
    Job.objects.filter(pk=job.pk).delete()
    thread.join(10)

    assert stored, "the worker stored its entry"
    assert not DLQEntry.objects.filter(job_id=job.pk).exists()
