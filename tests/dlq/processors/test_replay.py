"""Replay-aware processors: ctx.requeue says what requeue runs a record, and
ctx.idempotency_key is the same for a record in its batch and for its DLQ entry."""

import pytest
from django.contrib.auth.models import Group

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import DLQEntry, Job
from dlq.requeue import PayloadFix, RequeueOptions, RequeueScope

OPS = Actor("ops", "admin")


def seen():
    """What the processor wrote down, one tuple per record run, in the order they ran."""
    return [tuple(g.name.split("|")) for g in Group.objects.order_by("pk")]


def failed_batch(name="mailer"):
    """Records 0 and 2 of a three-record batch failed; the job is then fixed."""
    job = Job.objects.create(
        name=name, processor="test.remembers_replay", failure_strategy="send_to_dlq"
    )
    batch, _ = submit_batch(job, [{"fail": True}, {}, {"fail": True}])
    process_batch(batch.pk)
    return job, batch


@pytest.mark.django_db
def test_a_requeue_run_sees_its_run_and_attempt_and_the_key_the_batch_had():
    job, batch = failed_batch()
    first = seen()
    keys = [f"{job.pk}:{batch.pk}:{i}" for i in range(3)]
    # In the batch: no requeue, and each record its own key.
    assert first == [(key, "1", "None", "None", "None") for key in keys]
    job.config = {"fixed": True}
    job.save()
    job.name = "mailer-v2"  # a rename keeps the keys
    job.save()
    Group.objects.all().delete()
    run = requeue.run_here(RequeueScope.matching(job="mailer-v2"), RequeueOptions(), OPS)
    assert run.succeeded == 2
    assert seen() == [
        (keys[0], "2", str(run.pk), "2", "False"),
        (keys[2], "2", str(run.pk), "2", "False"),
    ]


@pytest.mark.django_db
def test_the_attempt_counts_up_over_requeues_that_fail_again():
    failed_batch()
    Group.objects.all().delete()
    runs = [
        requeue.run_here(RequeueScope.matching(job="mailer"), RequeueOptions(), OPS)
        for _ in range(2)
    ]
    assert [(run_id, attempt) for _, _, run_id, attempt, _ in seen()] == [
        (str(runs[0].pk), "2"),
        (str(runs[0].pk), "2"),
        (str(runs[1].pk), "3"),
        (str(runs[1].pk), "3"),
    ]


@pytest.mark.django_db
def test_an_edited_entry_is_requeued_as_edited_under_its_first_key():
    job, batch = failed_batch()
    entry = DLQEntry.objects.get(index=2)
    Group.objects.all().delete()
    run = triage.edit_and_requeue(entry.pk, {"fail": False}, actor=OPS)
    requeue.execute_run(run.pk)
    assert seen() == [(f"{job.pk}:{batch.pk}:2", "2", str(run.pk), "2", "True")]


@pytest.mark.django_db
def test_a_bulk_fix_run_says_its_payloads_were_edited():
    job, batch = failed_batch()
    Group.objects.all().delete()
    fix = PayloadFix.parse([{"op": "replace", "path": "/fail", "value": False}])
    run = requeue.run_here(RequeueScope.matching(job="mailer"), RequeueOptions(fix=fix), OPS)
    assert run.succeeded == 2
    assert [(key, edited) for key, _, _, _, edited in seen()] == [
        (f"{job.pk}:{batch.pk}:0", "True"),
        (f"{job.pk}:{batch.pk}:2", "True"),
    ]


@pytest.mark.django_db
def test_an_entry_edited_once_stays_edited_for_later_requeues():
    failed_batch()
    entry = DLQEntry.objects.get(index=0)
    run = triage.edit_and_requeue(entry.pk, {"fail": True, "note": "still"}, actor=OPS)
    requeue.execute_run(run.pk)  # fails again: pending, with its original kept
    Group.objects.all().delete()
    run = requeue.run_here(RequeueScope.of_ids([entry.pk]), RequeueOptions(), OPS)
    assert [(attempt, edited) for _, _, _, attempt, edited in seen()] == [("3", "True")]
