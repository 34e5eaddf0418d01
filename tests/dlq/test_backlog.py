"""Each error group's DLQ backlog (dlq_pending) follows its entries through every change."""

import importlib

import pytest
from django.apps import apps

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.models import DLQEntry, Job
from dlq.requeue import RequeueOptions, RequeueScope
from errors.models import ErrorGroup
from tests.dlq.factories import assert_backlogs_exact, fail, failing_entries

pytestmark = pytest.mark.django_db
OPS = Actor("ops", "admin")


def backlog():
    return dict(ErrorGroup.objects.values_list("template", "dlq_pending"))


def test_stored_entries_count_in_their_group():
    job = failing_entries(3)
    fail(job, 2)
    assert list(backlog().values()) == [5]
    assert_backlogs_exact()


def test_a_requeue_moves_the_backlog_with_what_happened_to_each_entry():
    failing_entries(4)
    first, second, *_ = DLQEntry.objects.order_by("pk")
    DLQEntry.objects.filter(pk=first.pk).update(payload={"symbol": "ACME"})  # now passes
    DLQEntry.objects.filter(pk=second.pk).update(payload={"symbol": 5})  # fails another way
    run = requeue.run_here(RequeueScope.of_ids([first.pk, second.pk]), RequeueOptions(), OPS)
    assert (run.succeeded, run.failed) == (1, 1)
    assert sorted(backlog().values()) == [1, 2]  # 2 left as they were, 1 in a new group
    assert_backlogs_exact()


def test_discarded_entries_leave_the_backlog():
    failing_entries(5)
    ids = list(DLQEntry.objects.order_by("pk").values_list("pk", flat=True)[:3])
    assert triage.discard(DLQEntry.objects.filter(pk__in=ids), actor=OPS) == 3
    assert list(backlog().values()) == [2]
    assert_backlogs_exact()


def test_a_deleted_job_leaves_its_groups_waiting_for_nothing():
    job = failing_entries(3)
    Job.objects.filter(pk=job.pk).delete()
    assert list(backlog().values()) == [0]
    assert_backlogs_exact()


def test_the_migration_counts_existing_entries_into_their_groups():
    failing_entries(3)
    other = failing_entries(2, name="payments")
    DLQEntry.objects.filter(job=other).update(status="resolved")
    ErrorGroup.objects.update(dlq_pending=0)  # as before the migration
    migration = importlib.import_module("dlq.migrations.0009_backlog_and_activity")
    migration.count_backlogs(apps, None)
    assert sorted(ErrorGroup.objects.values_list("job_name", "dlq_pending")) == [
        ("orders", 3),
        ("payments", 0),
    ]
    assert_backlogs_exact()


def test_an_entry_merged_away_while_it_is_requeued_is_counted_in_its_new_group():
    """A merge folds a claimed entry into another group before its requeue commits."""
    from dlq import regroup
    from dlq.models import RequeueRun
    from dlq.requeue import entries
    from tests.dlq.factories import auth_job, fail_with

    job = auth_job()
    fail_with(job, ["Disk full on /var"] * 2)
    fail_with(job, ["No space left on device"])
    small = ErrorGroup.objects.get(template__startswith="No space")
    run = RequeueRun.objects.create(created_by="ops", filters={"job": job.name}, status="running")
    claimed = entries.claim(
        list(DLQEntry.objects.filter(error_group=small).values_list("pk", flat=True)), run
    )
    into = regroup.merge_groups(ErrorGroup.objects.all(), actor=OPS)  # folds "No space" away
    result = entries.reprocess(claimed, run, started_by="ops")  # it fails again
    assert (result.failed, result.succeeded) == (1, 0)
    into.refresh_from_db()
    assert into.dlq_pending == 3
    assert_backlogs_exact()


def test_recount_backlogs_repairs_counts_left_wrong():
    from tests.commands import run

    failing_entries(4)
    ErrorGroup.objects.update(dlq_pending=-7)  # as if old workers had not counted
    out, _ = run("recount_backlogs")
    assert "Recounted the DLQ backlog of 1 error groups." in out
    assert list(backlog().values()) == [4]
    assert_backlogs_exact()
