"""Regrouping a job's history: the plan says what merges, splits and moves; applying it moves
exactly that, keeps every count and rollup exact, and a second regroup moves nothing."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum

from errors import regroup
from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup, GroupKey
from errors.rules import Rules
from errors.services import Failure, group_failures, save_occurrences

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NO_RULES = Rules.parse([])


def record(messages, *, job="auth", error_type="ValueError", at=T0, rules=NO_RULES):
    """Failures counted and stored as the engine does; return their groups."""
    failures = [Failure(error_type, m) for m in messages]
    groups = group_failures(job, failures, now=at, rules=rules)
    save_occurrences(
        job, [(g, f.message, 1) for g, f in zip(groups, failures, strict=True)], now=at
    )
    return groups


def apply(job, rules, **kwargs):
    """Plan, prepare, move every chunk, finish: what a regroup run does (in chunks of 3)."""
    plan = regroup.plan(job, rules, **kwargs)
    with transaction.atomic():
        regroup.prepare(plan, now=T0 + timedelta(days=1))
    moved, after = 0, 0
    while after is not None:
        with transaction.atomic():
            n, after = regroup.move_occurrences(plan, rules, after, size=3)
        moved += n
    with transaction.atomic():
        regroup.finish(plan, now=T0 + timedelta(days=1))
    return plan, moved


def history():
    """Per group: (template, count, status), and the rollups summed by group and grain."""
    groups = {g.pk: (g.template, g.count, g.status) for g in ErrorGroup.objects.all()}
    rollups = Counter()
    for group_id, grain, n in ErrorRollup.objects.values_list("group_id", "grain", "count"):
        rollups[(group_id, grain)] += n
    return groups, rollups


def assert_exact():
    """Every group's count and each grain's rollups equal the occurrences it holds."""
    held = Counter()
    for group_id, n in ErrorOccurrence.objects.values_list("group_id", "count"):
        held[group_id] += n
    for group in ErrorGroup.objects.all():
        assert group.count == held[group.pk], group
        for grain in ("m", "h", "d", "w"):
            rolled = ErrorRollup.objects.filter(group=group, grain=grain).aggregate(n=Sum("count"))
            assert (rolled["n"] or 0) == held[group.pk], (group, grain)


USERS = ["root", "git", "ftp"]


def test_a_variables_rule_merges_groups_that_differ_only_in_it():
    record(
        [f"Failed password for {user} from 10.0.0.{i} port 22" for i, user in enumerate(USERS * 3)]
    )
    record(["Connection closed by 10.0.0.9"])
    assert ErrorGroup.objects.count() == 4
    root = ErrorGroup.objects.get(template__contains="for root")
    rules = Rules.parse([{"variables": [r"for (\S+) from"]}])

    plan = regroup.plan("auth", rules)
    report = plan["report"]
    assert (report["groups_before"], report["groups_after"]) == (4, 2)
    [merge] = report["merges"]
    assert merge["into"] == root.pk  # the group the merge keeps is one of them, not a new one
    assert len(merge["groups"]) == 3
    assert report["moved_occurrences"] == 6
    assert not report["splits"]

    _, moved = apply("auth", rules)
    assert moved == report["moved_occurrences"]  # the preview's numbers are what applying does
    assert ErrorGroup.objects.count() == 2
    kept = ErrorGroup.objects.get(pk=root.pk)
    assert kept.template == "Failed password for <*> from <*> port <*>"
    assert kept.count == 9
    assert_exact()
    # New failures go where history went.
    [group] = record(["Failed password for oracle from 10.0.0.1 port 22"], rules=rules)
    assert group.pk == root.pk


def test_a_fixed_group_rule_splits_its_messages_off_and_keeps_the_rest():
    record(["Upstream timeout 1", "Upstream timeout 2", "Upstream refused 3", "Upstream refused 4"])
    assert ErrorGroup.objects.count() == 2
    rules = Rules.parse([{"message": "refused|timeout", "group": "Upstream trouble"}])
    plan, moved = apply("auth", rules)
    assert ErrorGroup.objects.count() == 1
    assert ErrorGroup.objects.get().template == "Upstream trouble"
    assert moved == plan["report"]["moved_occurrences"] == 2
    assert_exact()


def test_a_rule_that_makes_finer_groups_splits_a_group_which_keeps_the_part_of_its_own_key():
    record(["Payment declined: code 51", "Payment declined: code 51"])
    record(["Payment declined: code 05"] * 3)
    before = ErrorGroup.objects.get()  # the codes are numbers: one group
    rules = Rules.parse([{"message": "code 05$", "group": "Do not honour"}])
    plan = regroup.plan("auth", rules)
    [split] = plan["report"]["splits"]
    assert split["group"] == before.pk
    assert [(part["occurrences"], part["to"]) for part in split["parts"]] == [
        (3, "new"),
        (2, before.pk),  # its messages still have the group's own key
    ]
    _, moved = apply("auth", rules)
    assert moved == plan["report"]["moved_occurrences"] == 3
    assert ErrorGroup.objects.count() == 2
    assert ErrorGroup.objects.get(pk=before.pk).template == "Payment declined: code <*>"
    assert ErrorGroup.objects.exclude(pk=before.pk).get().template == "Do not honour"
    assert_exact()


def test_a_merged_group_is_resolved_only_if_all_its_parts_were():
    record(["Failed password for root from 1.1.1.1", "Failed password for git from 1.1.1.1"])
    ErrorGroup.objects.filter(template__contains="root").update(status="resolved")
    apply("auth", Rules.parse([{"variables": [r"for (\S+) from"]}]))
    assert ErrorGroup.objects.get().status == "unresolved"


def test_regrouping_twice_moves_nothing_the_second_time():
    record([f"Failed password for {user} from 1.1.1.1" for user in USERS])
    rules = Rules.parse([{"variables": [r"for (\S+) from"]}])
    apply("auth", rules)
    groups, rollups = history()
    plan, moved = apply("auth", rules)
    assert moved == 0
    assert plan["report"]["merges"] == plan["report"]["splits"] == []
    assert history() == (groups, rollups)


def test_purged_history_stays_counted_in_the_group_it_was_counted_in():
    record(["Failed password for root from 1.1.1.1"])
    record(["Failed password for root from 1.1.1.1"] * 2)
    record(["Failed password for git from 1.1.1.1"])
    root = ErrorGroup.objects.get(template__contains="root")
    ErrorOccurrence.objects.filter(group=root).order_by("pk")[:1].get().delete()  # purged
    total = ErrorGroup.objects.aggregate(n=Sum("count"))["n"]
    apply("auth", Rules.parse([{"variables": [r"for (\S+) from"]}]))
    assert ErrorGroup.objects.aggregate(n=Sum("count"))["n"] == total
    assert ErrorGroup.objects.get().count == 4


def test_keys_follow_the_groups_and_old_keys_of_folded_groups_lead_to_their_new_group():
    record([f"Failed password for {user} from 1.1.1.1" for user in USERS])
    old_keys = set(GroupKey.objects.values_list("fingerprint", flat=True))
    apply("auth", Rules.parse([{"variables": [r"for (\S+) from"]}]))
    [group] = ErrorGroup.objects.all()
    assert set(
        GroupKey.objects.filter(fingerprint__in=old_keys).values_list("group_id", flat=True)
    ) == {group.pk}
