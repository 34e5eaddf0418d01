"""`requeue --job J ...`: a requeue run worked through in the shell, with a progress bar (SPEC §9).

The command works the run in a thread of its own, with its own database
connection, so these tests commit their data (transactional_db).
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dlq import requeue
from dlq.actors import Actor
from dlq.management.commands import requeue as requeue_command
from dlq.models import DLQEntry, JobCounters, OperatorAction, RequeueRun
from dlq.requeue import RequeueOptions, RequeueScope
from tests.dlq.factories import fail, relax, schema_job

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("requeue", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def statuses(entries):
    return [DLQEntry.objects.get(pk=e.pk).status for e in entries]


def test_requeue_resolves_the_jobs_entries_with_a_progress_bar():
    job = schema_job()
    entries = fail(job, 5)
    other = fail(schema_job("audit"), 1)
    relax(job)

    out, err = run("--job", "orders")

    run_row = RequeueRun.objects.get()
    assert (run_row.status, run_row.total, run_row.succeeded) == ("finished", 5, 5)
    assert run_row.filters == {"job": "orders"}
    assert run_row.max_id == other[0].pk  # the newest entry id when the command started
    assert f"Requeue run {run_row.pk} finished: 5 resolved, 0 failed" in out
    assert f"requeue run {run_row.pk}" in err  # the tqdm bar, on stderr
    assert "5/5" in err
    assert statuses(entries) == ["resolved"] * 5
    assert statuses(other) == ["pending"]
    action = OperatorAction.objects.get(requeue_run=run_row)
    assert action.via == "shell"
    assert action.username.startswith("cli")


def test_failures_go_back_to_pending_and_are_counted():
    job = schema_job()
    entries = fail(job, 3)

    out, _ = run("--job", "orders")

    assert "0 resolved, 3 failed (back to pending)" in out
    assert statuses(entries) == ["pending"] * 3
    assert [DLQEntry.objects.get(pk=e.pk).attempts for e in entries] == [2, 2, 2]


def test_error_group_and_batch_narrow_the_run():
    job = schema_job()
    first, second = fail(job, 2), fail(job, 2)
    relax(job)

    run(
        "--job",
        "orders",
        "--error-group",
        str(first[0].error_group_id),
        "--batch",
        str(first[0].batch_id),
    )

    assert statuses(first) == ["resolved", "resolved"]
    assert statuses(second) == ["pending", "pending"]


def test_a_dry_run_prints_the_count_and_changes_nothing():
    job = schema_job()
    entries = fail(job, 4)
    relax(job)
    counters = JobCounters.objects.filter(job=job).values().get()

    out, _ = run("--job", "orders", "--dry-run")

    assert "4 entries would be requeued" in out
    assert "nothing was changed" in out
    assert statuses(entries) == ["pending"] * 4
    assert JobCounters.objects.filter(job=job).values().get() == counters
    assert RequeueRun.objects.get().dry_run is True


def test_the_rate_limit_is_passed_to_the_run():
    job = schema_job()
    fail(job, 2)
    relax(job)

    run("--job", "orders", "--rate", "50")

    assert RequeueRun.objects.get().rate_limit == 50


def test_a_canary_that_still_fails_stops_the_run_and_the_command_says_so():
    job = schema_job()
    entries = fail(job, 6)

    with pytest.raises(CommandError, match="canary stopped the run"):
        run("--job", "orders", "--canary", "2")

    run_row = RequeueRun.objects.get()
    assert (run_row.status, run_row.done, run_row.failed) == ("cancelled", 2, 2)
    assert statuses(entries) == ["pending"] * 6


def test_ctrl_c_cancels_the_run_and_waits_for_it_to_stop(monkeypatch):
    job = schema_job()
    entries = fail(job, 12)
    relax(job)
    interrupted = []
    original = requeue_command.Command._wait

    def wait_then_interrupt(self, worker):
        """Ctrl-C once, while the run is working (it has resolved entries, not all)."""
        if not interrupted and RequeueRun.objects.get(pk=worker.run_id).done > 0:
            interrupted.append(worker.run_id)
            raise KeyboardInterrupt
        original(self, worker)

    monkeypatch.setattr(requeue_command.Command, "_wait", wait_then_interrupt)

    with pytest.raises(CommandError, match="stopped early: cancelled by an operator"):
        run("--job", "orders", "--rate", "4")  # one entry per chunk, four a second

    run_row = RequeueRun.objects.get()
    assert run_row.status == "cancelled"
    assert run_row.cancel_requested
    assert 0 < run_row.done < 12
    done = statuses(entries)
    assert done.count("resolved") == run_row.succeeded
    assert "requeued" not in done  # nothing left half done
    assert OperatorAction.objects.filter(action="cancel", via="shell").exists()


def test_an_unknown_job_group_or_batch_is_refused():
    schema_job()
    with pytest.raises(CommandError, match="no job named 'nope'"):
        run("--job", "nope")
    with pytest.raises(CommandError, match="job must be a job name"):
        run("--job", "", "--batch", "1")
    with pytest.raises(CommandError, match="no error group 999"):
        run("--job", "orders", "--error-group", "999")
    with pytest.raises(CommandError, match="no batch 999"):
        run("--job", "orders", "--batch", "999")
    assert not RequeueRun.objects.exists()


def test_bad_options_are_refused_before_anything_starts():
    schema_job()
    for rate in ("0", "-1", "nan", "inf", "0.05", "1e-6", "100001"):
        with pytest.raises(CommandError, match="--rate must be a number of entries per second"):
            run("--job", "orders", "--rate", rate)
    with pytest.raises(CommandError, match="--canary must be a positive"):
        run("--job", "orders", "--canary", "-2")
    with pytest.raises(CommandError, match="needs --canary"):
        run("--job", "orders", "--canary-max-failure-ratio", "0.2")
    assert not RequeueRun.objects.exists()


def test_a_patch_file_fixes_each_payload_and_a_dry_run_prints_the_fix_on_a_sample(tmp_path):
    job = schema_job()
    entries = fail(job, 3)  # {"n": i}: no symbol
    patch = tmp_path / "fix.json"
    patch.write_text('[{"op": "add", "path": "/symbol", "value": "ACME"}]')

    out, _ = run("--job", "orders", "--patch", str(patch), "--dry-run")
    assert out.splitlines()[0].startswith("3 entries would be fixed and requeued")
    assert f"entry {entries[0].pk}: add /symbol: 'ACME'" in out
    assert not RequeueRun.objects.exists()
    assert statuses(entries) == ["pending"] * 3

    out, _ = run("--job", "orders", "--patch", str(patch))
    assert "3 resolved" in out and "0 not fixed" in out
    assert statuses(entries) == ["resolved"] * 3
    assert DLQEntry.objects.get(pk=entries[0].pk).payload == {"n": 0, "symbol": "ACME"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--patch", "/nonexistent/fix.json"], "cannot read"),
        (["--convert", "/n:money"], "to must be one of"),
        (["--convert", "n:number"], "JSON Pointer"),
        (["--convert", "/n"], "takes /PATH:TO"),
    ],
)
def test_a_bad_fix_from_the_shell_is_refused_and_changes_nothing(args, says):
    job = schema_job()
    entries = fail(job, 1)
    with pytest.raises(CommandError, match=says):
        run("--job", "orders", *args)
    assert statuses(entries) == ["pending"]
    assert not RequeueRun.objects.exists()


def test_a_second_run_over_entries_a_live_run_holds_is_refused_with_its_page():
    job = schema_job()
    fail(job, 3)
    live = requeue.start_run(RequeueScope.matching(job="orders"), RequeueOptions(), Actor.shell())
    with pytest.raises(
        CommandError, match=rf"requeue run {live.pk} \(queued.*/admin/dlq/requeuerun/{live.pk}/"
    ):
        run("--job", "orders")
    assert RequeueRun.objects.count() == 1
