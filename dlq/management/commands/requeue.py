"""`requeue --job J [--error-group G] [--batch B] [--rate R] [--dry-run] [--canary N]`.

A requeue run from the shell (SPEC §7, §9), cut at the newest DLQ entry id of
the moment so entries that fail later are left out. The run is worked
through in this process, in a thread, rather than sent to a Celery worker:
the command works with no worker running, and the operator watches it to
the end. The main thread follows the run's row (the numbers the admin and the
API show) with a progress bar on stderr; Ctrl-C asks the run to cancel and
waits for it to stop after its current chunk, so no entry is left half done.
"""

import getpass
import math
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction
from django.db.models import Max
from django.db.models.signals import post_save
from tqdm import tqdm

from dlq import requeue
from dlq.models import Batch, DLQEntry, Job, RequeueRun
from errors.models import ErrorGroup

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Requeue the pending DLQ entries of a job (optionally of one error group or batch) "
        "that exist now, in this process, with a progress bar; Ctrl-C cancels."
    )

    def add_arguments(self, parser):
        parser.add_argument("--job", required=True, help="The job whose entries to requeue.")
        parser.add_argument("--error-group", type=int, help="Only entries of this error group.")
        parser.add_argument("--batch", type=int, help="Only entries of this batch.")
        parser.add_argument("--rate", type=float, help="At most this many entries per second.")
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

    def handle(self, *args, **options):
        filters = self._filters(options)
        if options["rate"] is not None and not 0 < options["rate"] < math.inf:
            raise CommandError("--rate must be a positive number of entries per second")
        if options["canary_max_failure_ratio"] is not None:
            if options["canary"] is None:
                raise CommandError("--canary-max-failure-ratio needs --canary")
            if not 0 <= options["canary_max_failure_ratio"] <= 1:
                raise CommandError("--canary-max-failure-ratio must be between 0 and 1")
        kwargs = {
            "created_by": _operator(),
            "via": "shell",
            "filters": filters,
            "max_id": DLQEntry.objects.aggregate(newest=Max("pk"))["newest"] or 0,
            "rate_limit": options["rate"],
            "canary_size": options["canary"],
            "canary_max_failure_ratio": options["canary_max_failure_ratio"],
        }
        if options["dry_run"]:
            run = self._start(dry_run=True, **kwargs)
            self.stdout.write(
                f"{run.total:,} entries would be requeued (dry run {run.pk}; nothing was changed)."
            )
            return
        runner = _InProcessRun(kwargs)
        runner.start()
        run = self._follow(runner, show_progress=options["verbosity"] > 0)
        self.stdout.write(
            f"Requeue run {run.pk} {run.status}: {run.succeeded:,} resolved, {run.failed:,} failed "
            f"(back to pending), {run.skipped:,} skipped, {run.done + run.skipped:,} of "
            f"{run.total:,} reached."
        )
        if run.status == RequeueRun.Status.CANCELLED:
            raise CommandError(f"requeue run {run.pk} stopped early: {run.stop_reason}")

    def _filters(self, options):
        job = Job.objects.filter(name=options["job"]).first()
        if job is None:
            known = ", ".join(Job.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no job named {options['job']!r} (known jobs: {known})")
        filters = {"job": job.name}
        if options["error_group"] is not None:
            if not ErrorGroup.objects.filter(pk=options["error_group"]).exists():
                raise CommandError(f"no error group {options['error_group']}")
            filters["error_group"] = options["error_group"]
        if options["batch"] is not None:
            if not Batch.objects.filter(pk=options["batch"]).exists():
                raise CommandError(f"no batch {options['batch']}")
            filters["batch"] = options["batch"]
        return filters

    def _start(self, **kwargs):
        try:
            return requeue.start_run(**kwargs)
        except requeue.InvalidRequeue as exc:
            raise CommandError(str(exc)) from None

    def _follow(self, runner, *, show_progress):
        """Show the run's progress until it ends; the first Ctrl-C cancels, a second gives up."""
        progress, interrupted, cancelled = None, False, False
        try:
            while True:
                try:
                    if runner.run_id is None:
                        if runner.done_creating.is_set():
                            raise CommandError(_describe(runner.error))
                        self._wait(runner)
                        continue
                    if interrupted and not cancelled:
                        cancelled = True
                        requeue.cancel(runner.run_id, username=_operator(), via="shell")
                        self._say(progress, "Cancelling: the run stops after its current chunk…")
                    run = RequeueRun.objects.get(pk=runner.run_id)
                    if progress is None:
                        progress = self._progress_bar(run, show_progress)
                    _show(progress, run)
                    if run.status not in RequeueRun.ACTIVE:
                        runner.thread.join()
                        return run
                    if not runner.thread.is_alive() and runner.error is not None:
                        raise CommandError(
                            f"requeue run {run.pk} broke off: {_describe(runner.error)}; "
                            "the dispatcher hands it to a worker once its heartbeat is stale"
                        )
                    self._wait(runner)
                except KeyboardInterrupt:
                    if interrupted:
                        raise CommandError(
                            "Interrupted again: stopped waiting. The run was asked to cancel; "
                            "entries of its current chunk go back to pending when their claim "
                            "runs out."
                        ) from None
                    interrupted = True
        finally:
            if progress is not None:
                progress.close()

    def _progress_bar(self, run, show):
        return tqdm(
            total=run.total,
            unit=" entries",
            desc=f"requeue run {run.pk}",
            file=self.stderr._out,  # the raw stream: OutputWrapper would add a newline per update
            disable=not show,
            mininterval=POLL_SECONDS,
        )

    def _wait(self, runner):
        runner.thread.join(POLL_SECONDS)

    def _say(self, progress, text):
        if progress is not None:
            progress.write(text, file=self.stderr._out)
        else:
            self.stderr.write(text)


class _InProcessRun:
    """requeue.start_run(background=False) in a thread, telling its run id as soon as it exists.

    start_run creates the run and works it through in one call, so the run id
    is caught from the row's post_save in that thread, and announced when the
    row is committed (before then the main thread could not read it).
    """

    def __init__(self, kwargs):
        self.kwargs = kwargs
        self.run_id = None
        self.error = None
        self.done_creating = threading.Event()
        self.thread = threading.Thread(target=self._work, name="requeue-run", daemon=True)

    def start(self):
        self.thread.start()

    def _work(self):
        post_save.connect(self._created, sender=RequeueRun, weak=False)
        try:
            requeue.start_run(background=False, **self.kwargs)
        except BaseException as exc:  # handed to the main thread, which reports it
            self.error = exc
        finally:
            post_save.disconnect(self._created, sender=RequeueRun)
            self.done_creating.set()
            connections.close_all()  # this thread's connections only

    def _created(self, sender, instance, created, **kwargs):
        if created and threading.current_thread() is self.thread:
            transaction.on_commit(lambda: self._announce(instance.pk))

    def _announce(self, run_id):
        self.run_id = run_id
        self.done_creating.set()


def _show(progress, run):
    progress.n = min(run.done + run.skipped, run.total)
    progress.set_postfix(resolved=run.succeeded, failed=run.failed, refresh=False)
    progress.refresh()


def _describe(error):
    if isinstance(error, requeue.InvalidRequeue):
        return str(error)
    return f"{type(error).__name__}: {error}" if error else "the run could not be started"


def _operator():
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError, ImportError):
        return "cli"
