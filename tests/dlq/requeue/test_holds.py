"""One run per scope at a time: a run over entries that a live run holds is refused."""

import pytest
from django.utils import timezone

from dlq import requeue, triage
from dlq.actors import Actor
from dlq.models import DLQEntry, RequeueRun
from dlq.requeue import RequeueOptions, RequeueScope
from errors.models import ErrorGroup
from tests.dlq.factories import fail, failing_entries, schema_job

OPS = Actor("ops", "admin")

pytestmark = pytest.mark.django_db


def start(scope, **options):
    return requeue.start_run(scope, RequeueOptions(**options), OPS)


def ids(job_name="orders"):
    return list(
        DLQEntry.objects.filter(job__name=job_name).order_by("pk").values_list("pk", flat=True)
    )


def test_a_second_run_over_the_same_filter_is_refused_naming_the_live_one():
    failing_entries(5)
    first = start(RequeueScope.matching(job="orders"))
    with pytest.raises(requeue.ScopeHeld) as refused:
        start(RequeueScope.matching(job="orders"))
    assert refused.value.run.pk == first.pk
    assert f"requeue run {first.pk} (queued, 0 of 5 done)" in str(refused.value)
    assert RequeueRun.objects.count() == 1


def test_overlapping_scopes_of_every_kind_are_refused():
    failing_entries(6)
    group = ErrorGroup.objects.get()
    entry_ids = ids()
    start(RequeueScope.of_ids(entry_ids[:3]))
    for scope in (
        RequeueScope.matching(job="orders"),
        RequeueScope.matching(error_group=group.pk),
        RequeueScope.matching(batch=DLQEntry.objects.first().batch_id),
        RequeueScope.of_ids([entry_ids[2], entry_ids[5]]),
    ):
        with pytest.raises(requeue.ScopeHeld):
            start(scope)
    # Entries the live run does not reach are free.
    assert start(RequeueScope.of_ids(entry_ids[3:])).total == 3


def test_scopes_that_share_no_entry_both_start():
    failing_entries(3)
    other = schema_job("billing")
    fail(other, 2)
    start(RequeueScope.matching(job="orders"))
    assert start(RequeueScope.matching(job="billing")).total == 2
    group = ErrorGroup.objects.get(job_name="billing")
    # The other job's group and entries are held by the billing run now, not by orders'.
    with pytest.raises(requeue.ScopeHeld):
        start(RequeueScope.matching(error_group=group.pk))


def test_dry_runs_and_ended_runs_hold_nothing():
    failing_entries(3)
    dry = start(RequeueScope.matching(job="orders"), dry_run=True)
    assert dry.status == "finished"
    first = start(RequeueScope.matching(job="orders"))
    assert start(RequeueScope.matching(job="orders"), dry_run=True).total == 3  # only counts
    requeue.cancel(first.pk, actor=OPS)
    assert start(RequeueScope.matching(job="orders")).total == 3


def test_entries_a_live_run_has_passed_are_free_and_those_ahead_of_it_are_not():
    failing_entries(6)  # they keep failing: the run sends each back to pending
    run = start(RequeueScope.matching(job="orders"), rate_limit=3)
    run = requeue.execute_run(run.pk)  # three done, waiting for its next chunk
    assert (run.status, run.done, run.failed) == ("queued", 3, 3)
    passed, ahead = ids()[:3], ids()[3:]
    assert set(DLQEntry.objects.filter(pk__in=passed).values_list("status", flat=True)) == {
        "pending"
    }
    assert start(RequeueScope.of_ids(passed)).total == 3
    with pytest.raises(requeue.ScopeHeld) as refused:
        start(RequeueScope.of_ids(ahead[-1:]))
    assert refused.value.run.pk == run.pk


def test_entries_a_running_run_has_claimed_are_held():
    failing_entries(2)
    run = start(RequeueScope.of_ids(ids()))
    RequeueRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
    requeue.entries.claim(ids(), run)
    with pytest.raises(requeue.ScopeHeld):
        start(RequeueScope.matching(job="orders"))


def test_a_group_requeue_starts_the_free_groups_and_names_the_held_ones():
    failing_entries(2)
    other = schema_job("billing")
    fail(other, 2)
    held_by = start(RequeueScope.matching(job="orders"))
    refused = []
    runs = requeue.requeue_groups(
        ErrorGroup.objects.order_by("pk").values_list("pk", flat=True), OPS, held=refused
    )
    assert [r.filters["error_group"] for r in runs] == [
        ErrorGroup.objects.get(job_name="billing").pk
    ]
    assert [exc.run.pk for exc in refused] == [held_by.pk]


def test_an_edit_over_a_held_entry_changes_nothing():
    failing_entries(2)
    start(RequeueScope.matching(job="orders"))
    entry = DLQEntry.objects.order_by("pk").first()
    with pytest.raises(requeue.ScopeHeld):
        requeue_edit(entry.pk)
    entry.refresh_from_db()
    assert entry.original_payload is None


def requeue_edit(entry_id):
    return triage.edit_and_requeue(entry_id, {"symbol": "ACME"}, actor=OPS)
