"""Replay-aware processors on a real worker: the key a record had in its batch is the key its
DLQ entry has on every requeue (a run's, and one entry's edited), and ctx.requeue says which."""

import pytest
from django.contrib.auth.models import Group

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.ingest import submit_batch
from dlq.models import DLQEntry, Job, RequeueRun
from dlq.requeue import RequeueOptions, RequeueScope

from .harness import wait_for

pytestmark = pytest.mark.worker
OPS = Actor("ops", "admin")


def seen_since(pk):
    """(key, attempt, run id, requeue attempt, edited) the processor wrote after row `pk`."""
    return [tuple(g.name.split("|")) for g in Group.objects.filter(pk__gt=pk).order_by("pk")]


def last_row():
    return Group.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def finished(run):
    return wait_for(
        lambda: RequeueRun.objects.filter(pk=run.pk, status="finished").first(),
        what=f"requeue run {run.pk} to finish",
    )


def test_the_idempotency_key_of_a_record_is_its_entrys_on_every_requeue(worker):
    job = Job.objects.create(
        name="mailer", processor="test.remembers_replay", failure_strategy="send_to_dlq"
    )
    batch, _ = submit_batch(job, [{"fail": True}, {}, {"fail": True}])
    wait_for(lambda: DLQEntry.objects.filter(batch=batch).count() == 2, what="two entries")
    keys = [f"{job.pk}:{batch.pk}:{i}" for i in range(3)]
    assert seen_since(0) == [(key, "1", "None", "None", "None") for key in keys]

    # A run over the job: its entries fail again, under the keys they had.
    mark = last_row()
    run = finished(requeue.start_run(RequeueScope.matching(job="mailer"), RequeueOptions(), OPS))
    assert seen_since(mark) == [
        (keys[0], "2", str(run.pk), "2", "False"),
        (keys[2], "2", str(run.pk), "2", "False"),
    ]
    # One entry, edited by hand: the same key, edited, and it resolves.
    mark = last_row()
    entry = DLQEntry.objects.get(batch=batch, index=2)
    run = finished(triage.edit_and_requeue(entry.pk, {"fail": False}, actor=OPS))
    assert seen_since(mark) == [(keys[2], "3", str(run.pk), "3", "True")]
    assert DLQEntry.objects.get(pk=entry.pk).status == "resolved"
