"""What a requeue acts on and how, checked once for every door: RequeueScope and RequeueOptions."""

import math

import pytest

from dlq import requeue
from dlq.actors import Actor
from dlq.models import OperatorAction, RequeueRun
from dlq.requeue import InvalidRequeue, RequeueOptions, RequeueScope
from tests.dlq.factories import fail, schema_job

OPS = Actor("ops", "admin")


@pytest.mark.parametrize("ids", [["x"], [True], [1.5], [-3], [0], [], [None], [2**63]])
def test_ids_must_be_positive_integers(ids):
    with pytest.raises(InvalidRequeue):
        RequeueScope.of_ids(ids)


def test_ids_are_sorted_and_repeats_dropped_and_digit_strings_taken():
    assert RequeueScope.of_ids([5, "3", 5, 1]).entry_ids == (1, 3, 5)


def test_more_ids_than_the_cap_are_refused_as_such():
    with pytest.raises(requeue.TooManyIds) as refused:
        RequeueScope.of_ids(range(1, requeue.MAX_IDS + 2))
    assert refused.value.given == requeue.MAX_IDS + 1
    assert len(RequeueScope.of_ids(range(1, requeue.MAX_IDS + 1)).entry_ids) == requeue.MAX_IDS


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"job": ""},
        {"error_group": "abc"},
        {"error_group": 0},
        {"batch": True},
        {"job": 7},
        {"job": "orders", "max_id": -1},
        {"job": "orders", "max_id": "5"},
    ],
)
def test_a_filter_must_name_a_job_group_or_batch_properly(filters):
    with pytest.raises(InvalidRequeue):
        RequeueScope.matching(**filters)


@pytest.mark.parametrize(
    "options",
    [
        {"rate_limit": math.nan},
        {"rate_limit": math.inf},
        {"rate_limit": 0},
        {"rate_limit": -1},
        {"rate_limit": "fast"},
        {"rate_limit": True},
        {"canary_size": 0},
        {"canary_size": 2.5},
        {"canary_size": "2"},
        {"canary_max_failure_ratio": 0.5},  # without a canary it means nothing
        {"canary_size": 5, "canary_max_failure_ratio": 1.5},
        {"canary_size": 5, "canary_max_failure_ratio": "half"},
        {"dry_run": "yes"},
    ],
)
def test_bad_options_are_refused(options):
    with pytest.raises(InvalidRequeue):
        RequeueOptions(**options)


def test_a_canary_stops_above_half_by_default_and_a_plain_run_has_no_canary():
    assert RequeueOptions(canary_size=3).canary_ratio == requeue.DEFAULT_CANARY_MAX_FAILURE_RATIO
    assert RequeueOptions(canary_size=3, canary_max_failure_ratio=0).canary_ratio == 0
    assert RequeueOptions().canary_ratio is None


@pytest.mark.django_db
def test_a_filter_is_cut_at_the_newest_entry_and_keeps_its_cut():
    entries = fail(schema_job(), 3)
    cut = RequeueScope.matching(job="orders").cut()
    assert cut.max_id == entries[-1].pk
    fail(schema_job("audit"), 1)
    assert cut.cut().max_id == entries[-1].pk
    assert cut.count() == 3


@pytest.mark.django_db
def test_unknown_targets_are_named():
    schema_job()
    for filters, words in (
        ({"job": "nope"}, "no job named 'nope'"),
        ({"job": "orders", "error_group": 999}, "no error group 999"),
        ({"job": "orders", "batch": 999}, "no batch 999"),
    ):
        with pytest.raises(requeue.UnknownTarget, match=words):
            RequeueScope.matching(**filters).check_targets_exist()


@pytest.mark.django_db
def test_a_scope_reads_back_from_its_run_and_says_what_it_acts_on():
    entries = fail(schema_job(), 2)
    run = requeue.create_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    scope = RequeueScope.of_run(run)
    assert scope == RequeueScope(job="orders", max_id=entries[-1].pk)
    assert scope.describe() == f"pending entries where job = orders, id ≤ {entries[-1].pk}"
    ids = RequeueScope.of_ids(range(1, 14))
    assert ids.describe() == "pending entries among ids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more"
    assert OperatorAction.objects.get(requeue_run=run).target == scope.describe()


@pytest.mark.django_db
def test_a_run_created_is_audited_but_not_sent_and_a_dry_run_is_finished():
    fail(schema_job(), 2)
    run = requeue.create_run(RequeueScope.matching(job="orders"), RequeueOptions(), OPS)
    assert (run.status, run.total, run.created_by) == ("queued", 2, "ops")
    dry = requeue.create_run(RequeueScope.matching(job="orders"), RequeueOptions(dry_run=True), OPS)
    assert (dry.status, dry.total, dry.dry_run) == ("finished", 2, True)
    assert OperatorAction.objects.filter(action="requeue").count() == 2
    assert RequeueRun.objects.count() == 2
