"""`requeue --job J [--error-group G] [--batch B] [--rate R] [--dry-run] [--canary N]
[--patch FILE] [--convert /PATH:TO]`.

A requeue run from the shell, cut at the newest DLQ entry id of the moment so
entries that fail later are left out. The run is worked through in this
process, in a thread, rather than sent to a Celery worker: the command works
with no worker running, and the operator watches it to the end. The main
thread follows the run's row (the numbers the admin and the API show) with a
progress bar on stderr; Ctrl-C asks the run to cancel and waits for it to stop
after its current chunk, so no entry is left half done. With --patch (a file
of RFC 6902 operations, - for stdin) or --convert, each payload is fixed
before it runs again; --dry-run then prints the fix on a sample of payloads.
"""

import json
import sys
import threading
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from tqdm import tqdm

from dlq import requeue
from dlq.actors import Actor
from dlq.models import Job, RequeueRun
from dlq.requeue import PayloadFix, RequeueOptions, RequeueScope
from dlq.requeue.fix import CONVERSIONS, diff_in_words, preview

POLL_SECONDS = 0.5
# The service names its options as the API does; the shell knows them by their flags.
FLAGS = {
    "canary_max_failure_ratio": "--canary-max-failure-ratio",
    "canary_size": "--canary",
    "rate_limit": "--rate",
    "error_group": "--error-group",
}


class Command(BaseCommand):
    help = (
        "Requeue the pending DLQ entries of a job (optionally of one error group or batch) "
        "that exist now, in this process, with a progress bar; Ctrl-C cancels."
    )

    def add_arguments(self, parser):
        parser.add_argument("--job", required=True, help="The job whose entries to requeue.")
        parser.add_argument("--error-group", type=int, help="Only entries of this error group.")
        parser.add_argument("--batch", type=int, help="Only entries of this batch.")
        parser.add_argument(
            "--rate",
            type=float,
            help=f"At most this many entries per second ({requeue.MIN_RATE_LIMIT} to "
            f"{requeue.MAX_RATE_LIMIT:,}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count the entries; change nothing."
        )
        parser.add_argument(
            "--canary",
            type=int,
            metavar="N",
            help="Requeue N entries first and stop if too many of them fail.",
        )
        parser.add_argument(
            "--canary-max-failure-ratio",
            type=float,
            metavar="RATIO",
            help=f"With --canary: stop above this failure ratio "
            f"(default {requeue.DEFAULT_CANARY_MAX_FAILURE_RATIO}).",
        )
        parser.add_argument(
            "--patch",
            metavar="FILE",
            help="Fix each payload first with this JSON Patch (RFC 6902 operations; - reads "
            "stdin).",
        )
        parser.add_argument(
            "--convert",
            action="append",
            default=[],
            metavar="/PATH:TO",
            help=f"Fix each payload first by converting a field ({', '.join(CONVERSIONS)}), "
            "e.g. /price:number; may be repeated.",
        )

    def handle(self, *args, **options):
        try:
            scope = RequeueScope.matching(
                job=options["job"], error_group=options["error_group"], batch=options["batch"]
            ).check_targets_exist()
            fix = _fix(options["patch"], options["convert"])
            run_options = RequeueOptions(
                dry_run=options["dry_run"],
                rate_limit=options["rate"],
                canary_size=options["canary"],
                canary_max_failure_ratio=options["canary_max_failure_ratio"],
                fix=fix,
            )
            if fix and run_options.dry_run:
                self._preview(scope.cut(), fix)
                return
            run = requeue.create_run(scope, run_options, Actor.shell())
        except requeue.InvalidRequeue as exc:
            raise CommandError(_refusal(exc)) from None
        except requeue.ScopeHeld as exc:
            raise CommandError(f"{exc} (its page: /admin/dlq/requeuerun/{exc.run.pk}/)") from None
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted before the run started: nothing was requeued."
            ) from None
        except DatabaseError as exc:
            raise CommandError(
                f"the run could not be started: {type(exc).__name__}: {exc}"
            ) from exc
        if run.dry_run:
            self.stdout.write(
                f"{run.total:,} entries would be requeued (dry run {run.pk}; nothing was changed)."
            )
            return
        worker = _Worker(run.pk)
        worker.thread.start()
        run = self._follow(run, worker, show_progress=options["verbosity"] > 0)
        not_fixed = f", {run.not_fixed:,} not fixed (left as they were)" if run.fix else ""
        reached = run.done + run.skipped + run.not_fixed
        self.stdout.write(
            f"Requeue run {run.pk} {run.status}: {run.succeeded:,} resolved, {run.failed:,} failed "
            f"(back to pending), {run.skipped:,} skipped{not_fixed}, {reached:,} of "
            f"{run.total:,} reached."
        )
        if run.status == RequeueRun.Status.CANCELLED:
            raise CommandError(f"requeue run {run.pk} stopped early: {run.stop_reason}")

    def _preview(self, scope, fix):
        """The fix on a sample of the payloads, changing nothing."""
        sample = preview(scope, fix)
        self.stdout.write(
            f"{scope.count():,} entries would be fixed and requeued; the fix on the first "
            f"{len(sample)} (dry run; nothing was changed):"
        )
        for item in sample:
            if item.error:
                self.stdout.write(f"  entry {item.entry_id}: left as it is: {item.error}")
            else:
                changes = "; ".join(diff_in_words(item.diff))
                self.stdout.write(f"  entry {item.entry_id}: {changes}")

    def _follow(self, run, worker, *, show_progress):
        """Show the run's progress until it ends; the first Ctrl-C cancels, a second gives up."""
        progress = tqdm(
            total=run.total,
            unit=" entries",
            desc=f"requeue run {run.pk}",
            file=self.stderr._out,  # the raw stream: OutputWrapper would add a newline per update
            disable=not show_progress,
            mininterval=POLL_SECONDS,
        )
        interrupted = cancelled = False
        try:
            while True:
                try:
                    if interrupted and not cancelled:
                        cancelled = True
                        requeue.cancel(run.pk, actor=Actor.shell())
                        progress.write(
                            "Cancelling: the run stops after its current chunk…",
                            file=self.stderr._out,
                        )
                    run.refresh_from_db()
                    _show(progress, run)
                    if run.status not in RequeueRun.ACTIVE:
                        worker.thread.join()
                        return run
                    if not worker.thread.is_alive() and worker.error is not None:
                        raise CommandError(
                            f"requeue run {run.pk} broke off: {worker.describe_error()}; "
                            "the dispatcher hands it to a worker once its heartbeat is stale"
                        )
                    self._wait(worker)
                except KeyboardInterrupt:
                    if interrupted:
                        raise CommandError(
                            "Interrupted again: stopped waiting. The run was asked to cancel; "
                            "entries of its current chunk go back to pending when their claim "
                            "runs out."
                        ) from None
                    interrupted = True
        finally:
            progress.close()

    def _wait(self, worker):
        worker.thread.join(POLL_SECONDS)


class _Worker:
    """requeue.work_here in a thread of its own, keeping what stopped it, if anything."""

    def __init__(self, run_id):
        self.run_id = run_id
        self.error = None
        self.thread = threading.Thread(target=self._work, name="requeue-run", daemon=True)

    def _work(self):
        try:
            requeue.work_here(self.run_id)
        except BaseException as exc:  # handed to the main thread, which reports it
            self.error = exc
        finally:
            connections.close_all()  # this thread's connections only

    def describe_error(self):
        return f"{type(self.error).__name__}: {self.error}"


def _fix(patch_file, conversions):
    """The fix the flags give (None without --patch or --convert); InvalidRequeue if bad."""
    patch = None
    if patch_file:
        try:
            text = sys.stdin.read() if patch_file == "-" else Path(patch_file).read_text()
            patch = json.loads(text)
        except OSError as exc:
            raise CommandError(f"--patch: cannot read {patch_file}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"--patch: {patch_file} is not JSON: {exc}") from None
    convert = []
    for given in conversions:
        path, colon, to = given.rpartition(":")
        if not colon:
            raise CommandError(f"--convert takes /PATH:TO, e.g. /price:number (not {given!r})")
        convert.append({"path": path, "to": to})
    return PayloadFix.parse(patch, convert or None)


def _show(progress, run):
    progress.n = min(run.done + run.skipped + run.not_fixed, run.total)
    progress.set_postfix(resolved=run.succeeded, failed=run.failed, refresh=False)
    progress.refresh()


def _refusal(exc):
    """The service's words, with the shell's names for its options and the jobs one may name."""
    text = str(exc)
    for name, flag in FLAGS.items():
        text = text.replace(name, flag)
    if isinstance(exc, requeue.UnknownTarget) and exc.key == "job":
        known = ", ".join(Job.objects.values_list("name", flat=True)) or "none"
        text += f" (known jobs: {known})"
    return text
