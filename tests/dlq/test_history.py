"""An entry's attempt history (dlq.history): the original attempt lives in the entry's row
until a requeue that fails again overwrites its error, which gives it a row first, once."""

import pytest

from dlq import history, requeue
from dlq.actors import Actor
from dlq.models import DLQAttempt, DLQEntry
from dlq.requeue import PayloadFix, RequeueOptions, RequeueScope
from errors.context import DeploymentContext
from tests.dlq.factories import fail, relax, schema_job

OPS = Actor("ops", "admin")
FIRST = "Field 'symbol': missing (required)"
LATER = "Field 'venue': missing (required)"

pytestmark = pytest.mark.django_db


def on_node(settings, node_id):
    settings.VELO_DEPLOYMENT = DeploymentContext(node_id, "worker", "eu-west-1", "2.3.4")


def requeue_all(job, **options):
    return requeue.run_here(RequeueScope.matching(job=job.name), RequeueOptions(**options), OPS)


def fails_otherwise(job):
    """The job changes: its records now fail with another message."""
    job.config = {"schema": {"type": "object", "required": ["venue"]}}
    job.save()


def shape(attempts):
    return [(a.kind, a.started_by, a.outcome, a.error_message, a.node_id) for a in attempts]


@pytest.fixture
def job(settings):
    """A job with two entries stored on node-7, which has failed since differently."""
    on_node(settings, "node-7")
    job = schema_job()
    fail(job, 2)
    fails_otherwise(job)
    on_node(settings, "node-9")
    return job


def test_a_requeue_that_fails_stores_the_original_attempt_as_it_was_first(job):
    stored = {e.pk: e for e in DLQEntry.objects.all()}

    requeue_all(job)

    for entry in DLQEntry.objects.all():
        assert (entry.error_message, entry.original_attempt_stored) == (LATER, True)
        original, again = history.of_entry(entry)
        assert shape([original, again]) == [
            ("original", "worker", "failed", FIRST, "node-7"),
            ("requeue", "ops", "failed", LATER, "node-9"),
        ]
        assert original.pk is not None  # a row now, not the entry's
        assert (original.at, original.requeue_run_id) == (stored[entry.pk].created_at, None)


def test_a_second_failed_requeue_does_not_store_the_original_again(job):
    requeue_all(job)
    requeue_all(job)

    assert DLQAttempt.objects.filter(kind="original").count() == 2
    for entry in DLQEntry.objects.all():
        assert [a.kind for a in history.of_entry(entry)] == ["original", "requeue", "requeue"]
        assert history.of_entry(entry)[0].error_message == FIRST


def test_a_requeue_that_succeeds_leaves_the_original_attempt_in_the_entry(job):
    relax(job)

    requeue_all(job)

    assert not DLQAttempt.objects.filter(kind="original").exists()
    for entry in DLQEntry.objects.all():
        assert (entry.status, entry.original_attempt_stored) == ("resolved", False)
        assert shape(history.of_entry(entry)) == [
            ("original", "worker", "failed", FIRST, "node-7"),
            ("requeue", "ops", "succeeded", "", "node-9"),
        ]


def test_only_the_entries_of_a_chunk_that_fail_again_store_their_original(job):
    first, second = DLQEntry.objects.order_by("pk")
    DLQEntry.objects.filter(pk=first.pk).update(payload={"venue": "XLON"})

    requeue_all(job)

    assert list(DLQAttempt.objects.filter(kind="original").values_list("entry_id", flat=True)) == [
        second.pk
    ]


def test_a_fix_that_does_not_apply_leaves_the_error_and_the_original_in_the_entry(job):
    fix = PayloadFix.parse([{"op": "test", "path": "/n", "value": 99}])

    run = requeue_all(job, fix=fix)

    assert run.not_fixed == 2
    assert not DLQAttempt.objects.filter(kind="original").exists()
    for entry in DLQEntry.objects.all():
        assert [a.kind for a in history.of_entry(entry)] == ["original", "requeue"]
        assert history.of_entry(entry)[0].error_message == entry.error_message == FIRST
