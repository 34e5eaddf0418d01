"""Discard, edit-and-requeue, resolve and ignore: one service each, each audited."""

import pytest

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.models import DLQAttempt, DLQEntry, OperatorAction
from errors.models import ErrorGroup
from tests.dlq.factories import counters, failing_entries

OPS = Actor("ops", "admin")


@pytest.mark.django_db
def test_edit_and_requeue_keeps_the_original_and_records_the_change():
    failing_entries(1)
    entry = DLQEntry.objects.get()
    run = triage.edit_and_requeue(entry.pk, {"symbol": "ACME"}, actor=OPS)
    assert (run.status, run.total, run.entry_ids) == ("queued", 1, [entry.pk])  # for a worker
    run = requeue.execute_run(run.pk)
    entry.refresh_from_db()
    assert (run.succeeded, entry.status) == (1, "resolved")
    assert (entry.original_payload, entry.payload) == ({"n": 0}, {"symbol": "ACME"})
    edit = OperatorAction.objects.get(action="edit")
    assert edit.details == {"before": {"n": 0}, "after": {"symbol": "ACME"}}
    assert DLQAttempt.objects.get(kind="requeue").payload_edited


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [[1, 2], "text", {"bad": "nul\x00"}])
def test_an_edit_that_cannot_be_stored_is_refused_and_changes_nothing(payload):
    failing_entries(1)
    entry = DLQEntry.objects.get()
    with pytest.raises(triage.EditRefused):
        triage.edit_and_requeue(entry.pk, payload, actor=OPS)
    entry.refresh_from_db()
    assert (entry.payload, entry.original_payload, entry.status) == ({"n": 0}, None, "pending")
    assert not OperatorAction.objects.exists()


@pytest.mark.django_db
def test_discard_moves_pending_entries_out_of_the_dlq_size():
    job = failing_entries(3)
    assert triage.discard(DLQEntry.objects.all(), actor=OPS) == 3
    assert triage.discard(DLQEntry.objects.all(), actor=OPS) == 0
    c = counters(job)
    assert (c.dlq_pending, c.dlq_discarded) == (0, 3)
    first, second = OperatorAction.objects.filter(action="discard").order_by("pk")
    assert (first.count, sorted(first.entry_ids)) == (
        3,
        sorted(DLQEntry.objects.values_list("pk", flat=True)),
    )
    assert (second.count, second.entry_ids) == (0, [])


@pytest.mark.django_db
def test_resolving_and_ignoring_groups_is_audited():
    failing_entries(1)
    assert triage.set_group_status(ErrorGroup.objects.all(), "resolved", actor=OPS) == 1
    assert ErrorGroup.objects.get().status == "resolved"
    assert triage.set_group_status(ErrorGroup.objects.all(), "ignored", actor=OPS) == 1
    assert list(OperatorAction.objects.order_by("pk").values_list("action", flat=True)) == [
        "resolve",
        "ignore",
    ]
