"""Bulk fix: one change (JSON Patch, conversions) to many payloads, applied by a requeue run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dlq import requeue
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import DLQAttempt, DLQEntry, Job, OperatorAction
from dlq.requeue import InvalidRequeue, PayloadFix, RequeueOptions, RequeueScope
from dlq.requeue.fix import FixDoesNotApply, preview, to_number
from errors.models import ErrorGroup
from tests.dlq.factories import assert_backlogs_exact, counters, failing_entries

OPS = Actor("ops", "admin")
ADD_SYMBOL = [{"op": "add", "path": "/symbol", "value": "ACME"}]
PRICES = {
    "type": "object",
    "required": ["symbol", "price"],
    "properties": {"symbol": {"type": "string"}, "price": {"type": "number"}},
}


def prices_job(prices):
    """A job whose records need a numeric price, with one failed record per price given."""
    job = Job.objects.create(
        name="trades",
        processor="json_schema",
        config={"schema": PRICES},
        failure_strategy="send_to_dlq",
    )
    batch, _ = submit_batch(job, [{"symbol": "X", "price": p} for p in prices])
    process_batch(batch.pk)
    return job


def fixed_run(fix, **options):
    return requeue.run_here(
        RequeueScope.matching(job=DLQEntry.objects.first().job.name),
        RequeueOptions(fix=fix, **options),
        OPS,
    )


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("662,00", 662.0),
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("1,234,567", 1234567),
        (" 12 ", 12),
        ("-0,5", -0.5),
        ("3.25", 3.25),
        (7, 7),
    ],
)
def test_numbers_as_people_write_them_convert(text, number):
    assert to_number(text) == number


@pytest.mark.parametrize("text", ["1,234", "abc", "", "1,2,3", "12e", True, None, [1], "١٢"])
def test_a_number_that_could_be_read_two_ways_or_none_is_refused(text):
    with pytest.raises(FixDoesNotApply):
        to_number(text)


@pytest.mark.parametrize(
    ("patch", "convert", "says"),
    [
        ([], [], "empty"),
        ({"op": "add"}, None, "JSON lists"),
        ([{"op": "add", "path": "/a"}], None, "'value'"),
        ([{"op": "move", "path": "/a"}], None, "'from'"),
        ([{"op": "rename", "path": "/a"}], None, "op must be one of"),
        ([{"op": "add", "path": "a", "value": 1}], None, "must start with /"),
        (["add"], None, "not a JSON object"),
        (None, [{"path": "/a", "to": "money"}], "to must be one of"),
        (None, [{"path": "a", "to": "number"}], "JSON Pointer"),
        (None, [{"path": "/a"}], '"to": "number"'),
        ([{"op": "remove", "path": "/a"}] * 101, None, "at most 100"),
    ],
)
def test_a_fix_that_is_not_one_is_refused_saying_what_is_wrong(patch, convert, says):
    with pytest.raises(InvalidRequeue, match=says) as refused:
        PayloadFix.parse(patch, convert)
    assert refused.value.field == "patch"


def test_the_diff_carries_the_old_value_of_what_it_replaces_or_removes():
    fix = PayloadFix.parse(
        [{"op": "remove", "path": "/note"}], [{"path": "/price", "to": "number"}]
    )
    after, diff = fix.apply({"price": "662,00", "note": "typed by hand", "n": 1})
    assert after == {"price": 662.0, "n": 1}
    assert sorted(diff, key=lambda op: op["path"]) == [
        {"op": "remove", "path": "/note", "was": "typed by hand"},
        {"op": "replace", "path": "/price", "value": 662.0, "was": "662,00"},
    ]


def test_a_fix_leaves_the_payload_it_was_given_as_it_was():
    payload = {"price": "5,5", "tags": ["a"]}
    PayloadFix.parse([{"op": "add", "path": "/tags/-", "value": "b"}]).apply(payload)
    PayloadFix.parse(None, [{"path": "/price", "to": "number"}]).apply(payload)
    assert payload == {"price": "5,5", "tags": ["a"]}


@pytest.mark.django_db
def test_a_fix_run_fixes_requeues_and_resolves_keeping_originals_and_diffs():
    job = failing_entries(3)  # {"n": i}: the schema requires a symbol
    before = dict(DLQEntry.objects.values_list("pk", "payload"))

    run = fixed_run(PayloadFix.parse(ADD_SYMBOL))

    assert (run.status, run.total, run.done, run.succeeded, run.failed) == ("finished", 3, 3, 3, 0)
    assert run.not_fixed == 0
    assert run.fix == {"patch": ADD_SYMBOL, "convert": []}
    for entry in DLQEntry.objects.all():
        assert entry.status == "resolved"
        assert entry.original_payload == before[entry.pk]
        assert entry.payload == {**before[entry.pk], "symbol": "ACME"}
    attempts = DLQAttempt.objects.filter(kind="requeue")
    assert {(a.outcome, a.payload_edited) for a in attempts} == {("succeeded", True)}
    assert all(a.payload_diff == ADD_SYMBOL for a in attempts)
    action = OperatorAction.objects.get(requeue_run=run)
    assert action.action == "fix"
    assert action.details == {"fix": run.fix}
    assert action.outcome.startswith("finished: 3 resolved, 0 failed, 0 skipped, 0 not fixed")
    c = counters(job)
    assert (c.dlq_pending, c.dlq_requeued, c.dlq_resolved) == (0, 3, 3)
    assert_backlogs_exact()


@pytest.mark.django_db
def test_entries_the_fix_does_not_apply_to_stay_pending_untouched_and_are_counted():
    prices_job(["662,00", "abc", "12,50", "N/A"])
    before = dict(DLQEntry.objects.values_list("pk", "payload"))

    run = fixed_run(PayloadFix.parse(None, [{"path": "/price", "to": "number"}]))

    assert (run.total, run.done, run.succeeded, run.failed, run.not_fixed) == (4, 2, 2, 0, 2)
    assert run.done + run.skipped + run.not_fixed == run.total
    by_price = {before[entry.pk]["price"]: entry for entry in DLQEntry.objects.all()}
    assert by_price["662,00"].payload["price"] == 662.0
    assert by_price["12,50"].status == "resolved"
    for untouched in ("abc", "N/A"):
        entry = by_price[untouched]
        assert (entry.status, entry.attempts, entry.original_payload) == ("pending", 1, None)
        assert entry.payload == before[entry.pk]
        attempt = DLQAttempt.objects.get(entry=entry, kind="requeue")
        assert attempt.outcome == "not_fixed"
        assert "not a number" in attempt.error_message
    assert counters(DLQEntry.objects.first().job).dlq_requeued == 2
    assert_backlogs_exact()


@pytest.mark.django_db
def test_a_fixed_payload_that_still_fails_stays_pending_with_its_fix_and_first_original():
    prices_job(["662,00"])
    entry = DLQEntry.objects.get()
    fixed_run(PayloadFix.parse([{"op": "add", "path": "/note", "value": "first"}]))
    fixed_run(PayloadFix.parse([{"op": "replace", "path": "/note", "value": "second"}]))

    entry.refresh_from_db()
    assert entry.status == "pending"
    assert entry.attempts == 3
    assert entry.payload == {"symbol": "X", "price": "662,00", "note": "second"}
    assert entry.original_payload == {"symbol": "X", "price": "662,00"}
    diffs = [a.payload_diff for a in DLQAttempt.objects.filter(entry=entry, kind="requeue")]
    assert diffs == [
        [{"op": "add", "path": "/note", "value": "first"}],
        [{"op": "replace", "path": "/note", "value": "second", "was": "first"}],
    ]
    assert ErrorGroup.objects.get().dlq_pending == 1
    assert_backlogs_exact()


@pytest.mark.django_db
def test_a_canary_that_stops_a_fix_run_leaves_the_rest_unfixed(settings):
    settings.VELO_REQUEUE_CHUNK = 5
    failing_entries(30)
    # A fix that does not fix: the symbol must be a string.
    run = fixed_run(PayloadFix.parse([{"op": "add", "path": "/symbol", "value": 7}]), canary_size=5)

    assert run.status == "cancelled"
    assert run.stop_reason.startswith("canary stopped the run")
    assert (run.done, run.failed) == (5, 5)
    assert DLQEntry.objects.filter(original_payload__isnull=False).count() == 5
    assert DLQEntry.objects.filter(payload__has_key="symbol").count() == 5


@pytest.mark.django_db
def test_a_preview_shows_before_and_after_and_changes_nothing():
    prices_job(["662,00", "abc"])
    rows = list(DLQEntry.objects.order_by("pk").values())
    fix = PayloadFix.parse(None, [{"path": "/price", "to": "number"}])

    sample = preview(RequeueScope.matching(job="trades").cut(), fix, size=10)

    assert [(s.after, s.error) for s in sample] == [
        ({"symbol": "X", "price": 662.0}, ""),
        (None, "'abc' is not a number Velo can read unambiguously"),
    ]
    assert sample[0].diff == [{"op": "replace", "path": "/price", "value": 662.0, "was": "662,00"}]
    assert list(DLQEntry.objects.order_by("pk").values()) == rows
    assert not DLQAttempt.objects.filter(kind="requeue").exists()


@pytest.mark.parametrize(
    ("convert", "says"),
    [
        ([{"path": "/a~2b", "to": "number"}], "conversion 1"),
        ([{"path": "/tags/-", "to": "string"}], "past a list's end"),
    ],
)
def test_a_conversion_path_that_names_no_value_is_refused_up_front(convert, says):
    with pytest.raises(InvalidRequeue, match=says):
        PayloadFix.parse(None, convert)


def test_a_fix_too_big_to_copy_into_every_attempt_is_refused():
    with pytest.raises(InvalidRequeue, match="KiB"):
        PayloadFix.parse([{"op": "add", "path": "/note", "value": "x" * 70_000}])


@pytest.mark.parametrize("value", ["9" * 5000, "1" * 101])
def test_text_too_long_to_be_a_number_is_not_fixed_rather_than_an_error(value):
    fix = PayloadFix.parse(None, [{"path": "/price", "to": "number"}])
    with pytest.raises(FixDoesNotApply):
        fix.apply({"price": value})


def test_json_types_count_as_changes_even_where_python_calls_them_equal():
    fix = PayloadFix.parse([{"op": "replace", "path": "/active", "value": True}])
    after, diff = fix.apply({"active": 1})
    assert after == {"active": True}
    assert diff == [{"op": "replace", "path": "/active", "value": True, "was": 1}]


def test_each_old_value_in_a_diff_is_read_where_the_operations_before_it_left_it():
    fix = PayloadFix.parse([{"op": "replace", "path": "/a", "value": [3]}])
    _, diff = fix.apply({"a": [1, 2, 3]})
    removed = [op["was"] for op in diff if op["op"] == "remove"]
    assert sorted(removed) == [1, 2]


@pytest.mark.django_db
def test_a_fix_run_resumed_after_its_worker_died_mid_chunk_fixes_and_counts_each_entry_once(
    monkeypatch, settings
):
    """The worker dies after a chunk's outcomes are committed, before its cursor moves."""
    settings.VELO_REQUEUE_CLAIM_SECONDS = 1
    job = failing_entries(3)
    fix = PayloadFix.parse(
        [
            {"op": "add", "path": "/tags", "value": []},
            {"op": "add", "path": "/tags/-", "value": "fixed"},
        ]
    )
    scope = RequeueScope.matching(job="orders")
    run = requeue.create_run(scope, RequeueOptions(fix=fix), OPS)

    def die(*args):
        raise SystemExit("worker killed")

    monkeypatch.setattr(requeue.runs, "_record_progress", die)
    with pytest.raises(SystemExit):
        requeue.execute_run(run.pk)
    monkeypatch.undo()
    assert DLQAttempt.objects.filter(requeue_run=run).count() == 3  # committed, uncounted

    later = timezone.now() + timedelta(seconds=60)
    requeue.recover_expired_claims(now=later)
    assert requeue.recover_stalled_runs(now=later) == 1
    run = requeue.execute_run(run.pk)

    assert run.status == "finished"
    assert (run.failed, run.skipped) == (0, 3)  # the resumed chunk is not run again
    for entry in DLQEntry.objects.all():
        assert entry.payload["tags"] == ["fixed"]
        assert entry.attempts == 2
    assert DLQAttempt.objects.filter(requeue_run=run).count() == 3
    assert counters(job).dlq_requeued == 3
    assert_backlogs_exact()
