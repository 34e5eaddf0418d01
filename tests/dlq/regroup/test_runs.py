"""Regroup runs: a preview says what applying will do, applying does exactly that, puts the rules
in force, moves DLQ entries with their history, and resumes after its worker dies."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import DatabaseError, OperationalError
from django.db.models import Sum
from django.utils import timezone

from dlq import regroup
from dlq.actors import Actor
from dlq.models import DLQEntry, Job, OperatorAction, RegroupRun
from errors import regroup as history
from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup
from tests.conftest import BAD, GOOD
from tests.dlq.factories import assert_backlogs_exact, attacks, auth_job
from tests.dlq.factories import fail_with as fail

pytestmark = pytest.mark.django_db
OPS = Actor("ops", "admin")
RULES = [{"variables": [r"for (\S+) from"]}]


def snapshot():
    """Counts that a regroup must keep: per group, per grain, and in all."""
    return (
        ErrorGroup.objects.aggregate(n=Sum("count"))["n"],
        ErrorRollup.objects.filter(grain="h").aggregate(n=Sum("count"))["n"],
        ErrorOccurrence.objects.aggregate(n=Sum("count"))["n"],
        DLQEntry.objects.count(),
    )


def assert_exact():
    held = Counter()
    for group_id, n in ErrorOccurrence.objects.values_list("group_id", "count"):
        held[group_id] += n
    for group in ErrorGroup.objects.all():
        assert group.count == held[group.pk], group
        for grain in ("m", "h"):
            rolled = ErrorRollup.objects.filter(group=group, grain=grain).aggregate(n=Sum("count"))
            assert (rolled["n"] or 0) == held[group.pk], (group, grain)
    entries = Counter(DLQEntry.objects.values_list("error_group_id", flat=True))
    assert entries == held  # send_to_dlq: one entry per occurrence, in the same group
    assert_backlogs_exact()


def run_here(job, rules, **kwargs):
    run = regroup.create_run(job, rules, actor=OPS, **kwargs)
    regroup.execute_run(run.pk)
    run.refresh_from_db()
    return run


def test_a_preview_changes_nothing_and_applying_does_what_it_said():
    job = auth_job()
    attacks(job)
    before = snapshot()
    groups = set(ErrorGroup.objects.values_list("pk", flat=True))

    preview = run_here(job, RULES, dry_run=True)
    assert (preview.status, preview.phase) == ("finished", "done")
    report = preview.report
    assert (report["groups_before"], report["groups_after"]) == (5, 2)
    assert report["moved_occurrences"] == report["moved_pending_entries"] == 9
    assert set(ErrorGroup.objects.values_list("pk", flat=True)) == groups  # nothing changed
    job.refresh_from_db()
    assert job.grouping == []

    applied = run_here(job, RULES)
    assert applied.status == "finished"
    assert applied.report == report  # the preview's numbers are the apply's
    assert (applied.moved_occurrences, applied.moved_entries) == (9, 9)
    job.refresh_from_db()
    assert job.grouping == RULES
    assert ErrorGroup.objects.count() == 2
    assert snapshot() == before
    assert_exact()
    actions = OperatorAction.objects.filter(action="regroup").order_by("pk")
    assert [a.dry_run for a in actions] == [True, False]
    assert "5 groups → 2" in actions[1].outcome


def test_after_applying_new_failures_land_in_the_regrouped_group():
    job = auth_job()
    attacks(job, rounds=1)
    run_here(job, RULES)
    [group] = ErrorGroup.objects.filter(template__startswith="Failed password")
    fail(job, ["Failed password for nobody from 10.9.9.9 port 22"])
    assert ErrorGroup.objects.filter(template__startswith="Failed password").get() == group


def test_applying_twice_moves_nothing_the_second_time():
    job = auth_job()
    attacks(job)
    run_here(job, RULES)
    again = run_here(job, RULES)
    assert (again.moved_occurrences, again.moved_entries) == (0, 0)
    assert again.report["merges"] == again.report["splits"] == []


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ([{"variables": ["(unclosed"]}], "not a pattern RE2 takes"),
        ([{"variables": [r"(a)\1"]}], "not a pattern RE2 takes"),
        ([{"variables": ["no such text anywhere"]}], "matches none of the"),
        ([{"group": "x"}], "matches an 'error_type', a 'message', or both"),
        ([{"sometimes": 1}], "unknown key"),
        ("not a list", "a list of rules"),
    ],
)
def test_rules_that_cannot_work_are_refused_and_start_nothing(rules, words):
    job = auth_job()
    attacks(job, rounds=1)
    with pytest.raises(regroup.InvalidRegroup, match=words):
        regroup.create_run(job, rules, actor=OPS)
    assert not RegroupRun.objects.exists()


def test_only_one_regroup_of_a_job_is_applied_at_a_time():
    job = auth_job()
    attacks(job, rounds=1)
    regroup.create_run(job, RULES, actor=OPS)
    with pytest.raises(regroup.InvalidRegroup, match="still queued"):
        regroup.create_run(job, RULES, actor=OPS)
    regroup.create_run(job, RULES, actor=OPS, dry_run=True)  # a preview may run beside it


def test_a_running_run_whose_worker_went_silent_is_queued_again():
    run = regroup.create_run(auth_job(), RULES, actor=OPS)
    stale = timezone.now() - timedelta(hours=1)
    RegroupRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=stale)
    assert regroup.recover_stalled_runs() == 1
    run.refresh_from_db()
    assert (run.status, run.dispatched_at) == ("queued", None)


class _Interrupted:
    """A regroup of attacks whose second chunk meets `interrupt(run)`, in 4-row chunks."""

    def __init__(self, monkeypatch, interrupt):
        self.monkeypatch, self.real = monkeypatch, history.move_occurrences
        job = auth_job()
        attacks(job, rounds=5)
        self.before, self.calls = snapshot(), []

        def move(plan, rules, after, size):
            self.calls.append(after)
            if len(self.calls) == 2:
                interrupt(self.run)
            return self.real(plan, rules, after, size=4)

        monkeypatch.setattr(history, "move_occurrences", move)
        self.run = regroup.create_run(job, RULES, actor=OPS)

    def resume_to_the_end(self):
        real = self.real
        self.monkeypatch.setattr(
            history, "move_occurrences", lambda p, r, a, size: real(p, r, a, size=4)
        )
        regroup.execute_run(self.run.pk)
        self.run.refresh_from_db()
        assert self.run.status == "finished"
        assert self.run.moved_occurrences == self.run.report["moved_occurrences"]
        assert snapshot() == self.before
        assert_exact()


def test_a_run_whose_worker_dies_mid_way_resumes_and_ends_exact(monkeypatch):
    def connection_gone(run):
        raise OperationalError("the worker's connection is gone")

    regrouping = _Interrupted(monkeypatch, connection_gone)
    with pytest.raises(DatabaseError):
        regroup.execute_run(regrouping.run.pk)
    run = regrouping.run
    run.refresh_from_db()
    # Its worker handed it back as soon as the database answered: queued to resume.
    assert (run.status, run.phase, run.cursor > 0) == ("queued", "occurrences", True)
    regrouping.resume_to_the_end()


def test_an_execution_whose_run_was_handed_to_another_worker_commits_nothing_more(monkeypatch):
    """Its worker was declared dead (cut off from the database while others beat) and the
    run claimed again elsewhere: the old execution's next chunk rolls back and it stops."""

    def claimed_elsewhere(run):  # as recovery and another worker's claim leave the row
        later = timezone.now() + timedelta(seconds=1)
        RegroupRun.objects.filter(pk=run.pk).update(claimed_at=later)

    regrouping = _Interrupted(monkeypatch, claimed_elsewhere)
    assert regroup.execute_run(regrouping.run.pk) is None
    run = regrouping.run
    run.refresh_from_db()
    assert (run.status, run.phase, len(regrouping.calls)) == ("running", "occurrences", 2)
    assert 0 < run.moved_occurrences <= 4  # the first chunk only: the second rolled back
    RegroupRun.objects.filter(pk=run.pk).update(status="queued")  # the new holder resumes
    regrouping.resume_to_the_end()


def test_merging_groups_moves_their_history_and_entries_into_the_biggest():
    job = auth_job()
    fail(job, ["Disk full on /var"] * 3)
    fail(job, ["No space left on device"] * 2)
    big = ErrorGroup.objects.get(template__startswith="Disk full")
    small = ErrorGroup.objects.get(template__startswith="No space")
    ErrorGroup.objects.filter(pk=big.pk).update(status="resolved")
    into = regroup.merge_groups(ErrorGroup.objects.all(), actor=OPS)
    assert into.pk == big.pk
    assert (into.count, into.status) == (5, "unresolved")  # resolved only if all parts were
    assert not ErrorGroup.objects.filter(pk=small.pk).exists()
    assert_exact()
    assert OperatorAction.objects.get(action="merge").details == {
        "into": big.pk,
        "groups": [small.pk],
    }
    # New failures of the merged group's kind follow its key into the merge.
    fail(job, ["No space left on device"])
    assert ErrorGroup.objects.get().pk == big.pk


def test_a_merged_group_splits_back_into_its_parts_by_template():
    job = auth_job()
    fail(job, ["Disk full on /var"] * 3)
    fail(job, ["No space left on device"] * 2)
    into = regroup.merge_groups(ErrorGroup.objects.all(), actor=OPS)
    run = regroup.unmerge(into, actor=OPS)
    regroup.execute_run(run.pk)
    templates = sorted(ErrorGroup.objects.values_list("template", "count"))
    assert templates == [("Disk full on /var", 3), ("No space left on device", 2)]
    assert ErrorGroup.objects.filter(pk=into.pk).exists()  # the larger part kept the group
    assert_exact()
    fail(job, ["No space left on device"])
    assert ErrorGroup.objects.get(template="No space left on device").count == 3


def test_a_group_whose_job_is_gone_cannot_be_split_and_says_why():
    job = auth_job()
    fail(job, ["Disk full on /var"] * 2)
    group = ErrorGroup.objects.get()
    job.delete()
    group.refresh_from_db()
    with pytest.raises(regroup.InvalidRegroup, match="its job is gone"):
        regroup.unmerge(group, actor=OPS)


def test_merging_needs_two_groups_of_one_job():
    job = auth_job()
    other = Job.objects.create(name="other", processor="test.fails_with")
    fail(job, ["a problem"])
    fail(other, ["another problem"])
    with pytest.raises(regroup.InvalidRegroup, match="two groups or more"):
        regroup.merge_groups(ErrorGroup.objects.filter(job_name="auth"), actor=OPS)
    with pytest.raises(regroup.InvalidRegroup, match="different jobs"):
        regroup.merge_groups(ErrorGroup.objects.all(), actor=OPS)


def test_velo_unique_error_types_counts_the_groups_after_a_merge():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from dlq.metrics import VeloCollector

    def unique_error_types():
        registry = CollectorRegistry(auto_describe=False)
        registry.register(VeloCollector())
        text = generate_latest(registry).decode()
        [family] = [
            f for f in text_string_to_metric_families(text) if f.name == "velo_unique_error_types"
        ]
        return family.samples[0].value

    attacks(auth_job())
    assert unique_error_types() == 5
    regroup.merge_groups(ErrorGroup.objects.filter(template__startswith="Failed"), actor=OPS)
    assert unique_error_types() == 2


def test_records_dead_lettered_with_their_batch_stay_with_the_record_that_failed_it(
    make_job, run_batch
):
    """fail_batch's bystanders ("Batch failed: <cause>") are grouped by their cause's message."""
    job = make_job(failure_strategy="fail_batch", max_retries=1)
    run_batch(job, [GOOD, BAD, GOOD])
    run_batch(job, [GOOD, {"symbol": "X", "price": True}])
    assert DLQEntry.objects.filter(error_message__startswith="Batch failed: ").count() == 3

    unchanged = run_here(job, [], dry_run=True)
    assert unchanged.report["groups_before"] == unchanged.report["groups_after"] == 2
    assert unchanged.report["moved_occurrences"] == unchanged.report["moved_pending_entries"] == 0

    run_here(job, [{"message": "^Missing required", "group": "Schema drift"}])
    by_batch = set(DLQEntry.objects.values_list("batch_id", "error_group_id"))
    assert len(by_batch) == 2  # each batch's entries still share one group
    drift = ErrorGroup.objects.get(template="Schema drift")
    assert DLQEntry.objects.filter(error_group=drift).count() == 3


def test_counted_occurrences_split_by_new_rules_move_with_their_whole_counts():
    job = auth_job()
    fail(job, ["Payment declined: code 51"] * 400 + ["Payment declined: code 05"] * 600)
    before = ErrorGroup.objects.get()  # the codes are numbers: one group
    assert sorted(ErrorOccurrence.objects.values_list("count", flat=True)) == [400, 600]
    totals = snapshot()

    run = run_here(job, [{"message": "code 05$", "group": "Do not honour"}])

    assert run.status == "finished"
    assert run.report["moved_occurrences"] == run.moved_occurrences == 600
    assert run.moved_entries == 600
    honour = ErrorGroup.objects.get(template="Do not honour")
    assert dict(ErrorOccurrence.objects.values_list("group_id", "count")) == {
        before.pk: 400,
        honour.pk: 600,
    }
    assert (ErrorGroup.objects.get(pk=before.pk).count, honour.count) == (400, 600)
    assert snapshot() == totals
    assert_exact()
