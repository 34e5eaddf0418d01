"""Running a job's processor over records, catching each record's failure."""

import functools
import linecache
import logging
import traceback
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from common import text as bounded

from .. import redaction
from . import ProcessorContext, registry, resolve
from .limits import BATCH_TIMEOUT, RECORD_TIMEOUT, BatchTimeout, TimeLimits, record_timeout_message

log = logging.getLogger("velo.records")


@dataclass(frozen=True)
class RecordFailure:
    index: int
    error_type: str
    message: str
    traceback: str = ""
    # The length before the message was cut to VELO_MAX_ERROR_MESSAGE_CHARS (None: len(message)).
    message_length: int | None = None

    @property
    def original_length(self):
        return len(self.message) if self.message_length is None else self.message_length


@dataclass(frozen=True)
class RunResult:
    attempted: int
    failures: list
    # Indexes the attempt's batch_timeout left unreached (or interrupted), for a later attempt.
    left: tuple = ()
    # Its failures were reported already, in one line for all: log_failures leaves them out.
    logged: bool = False

    @property
    def record_timeouts(self):
        return sum(f.error_type == RECORD_TIMEOUT for f in self.failures)


def storable_text(text):
    """Text any database stores: a NUL shown as \\x00, lone surrogates escaped."""
    if text.isascii():  # no surrogate: it encodes as itself
        return text.replace("\x00", "\\x00")
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class Capture:
    """How the failures of one run are captured: each one's message and traceback with the
    record's sensitive values masked (dlq.redaction), in a text any database stores.

    A storm's failures share a few failure sites and messages: what a failure stores depends
    only on its exception's type, text and frames and on its record's secrets, so it is
    worked out once per distinct one in the run, and a site's frames are asked once whether
    they may hold a secret. The text stored is the same as working each out alone.
    """

    # Distinct failures kept per run: a run of all-different messages stops remembering.
    SEEN = 10_000

    def __init__(self, redactor=None, *, job=None):
        # With `job`, its redactor is looked up at the first failure: a requeue runs one
        # record at a time, mostly one that succeeds.
        self._redactor, self._job = redactor, job
        self._seen = {}
        self._hinted = {}

    @functools.cached_property
    def redactor(self):
        return redaction.for_job(self._job) if self._job is not None else self._redactor

    def failure(self, index, exc, record=None):
        # An error is stored beside the record it failed; a message no database
        # can hold would make the whole attempt fail to record, again and again.
        try:
            text = str(exc)
            message = text or type(exc).__name__
        except Exception:  # an exception whose __str__ itself raises
            text, message = "<exception str() failed>", f"<unprintable {type(exc).__name__}>"
        secrets = self.redactor.ordered_secrets(record) if self.redactor else ()
        try:
            frames = _plain_frames(exc)
        except Exception:
            frames = None
        if frames is None:  # formatted the slow way: not worth remembering
            return RecordFailure(index, *self._work_out(exc, text, message, secrets, None))
        key = (type(exc), text, message, frames, secrets)
        found = self._seen.get(key)
        if found is None:
            found = self._work_out(exc, text, message, secrets, frames)
            if len(self._seen) < self.SEEN:
                self._seen[key] = found
        return RecordFailure(index, *found)

    def _work_out(self, exc, text, message, secrets, frames):
        """(error_type, message, traceback, message_length) of a failure."""
        # Where every failure is captured, its message and traceback are cut to
        # their bounds: stored, grouped, logged and served, a 5 MiB message would
        # be copied everywhere.
        message_length = len(message)
        # Masked before it is cut, so a secret across the cut is still found whole; but only a
        # piece twice the bound is masked: megabytes per record would make hostile text costly.
        bound = settings.VELO_MAX_ERROR_MESSAGE_CHARS
        mask = functools.partial(self.redactor.text, secrets=secrets) if self.redactor else str
        message = bounded.clip(mask(message[: 2 * bound]), bound, message_length)
        try:
            # Its last line repeats the message: the one stored.
            shown = message if text else text
            if frames is None:
                trace = mask(traceback_text(exc, shown))
            else:
                trace = self._masked(_frames_text(frames), _last_line(type(exc), shown), mask)
        except Exception:
            trace = ""
        return (
            storable_text(type(exc).__name__),
            storable_text(message),
            storable_text(bounded.traceback(trace)),
            message_length,
        )

    def _masked(self, stack, last, mask):
        """mask(stack + last), where a text with no secret of its record and no hint of a
        sensitive pair in either part (the stack ends at a line break) is left as it is."""
        if mask is str or mask.keywords["secrets"] or not stack.endswith("\n"):
            return mask(stack + last)
        hinted = self._hinted.get(stack)
        if hinted is None:
            hinted = self._hinted[stack] = self.redactor.hinted(stack)
        if hinted or self.redactor.hinted(last):
            return mask(stack + last)
        return stack + last


def traceback_text(exc, text):
    """The exception's traceback as Python prints it, cheaply; `text` is `str(exc)`.

    A batch's failures mostly share their failure site; formatting the frames
    (source lookups, and in 3.11 a compile() per frame) is done once per site.
    Chained exceptions take the full, slower path, to keep their context.
    """
    frames = _plain_frames(exc)
    if frames is None:
        return "".join(traceback.format_exception(exc))
    return _frames_text(frames) + _last_line(type(exc), text)


def _plain_frames(exc):
    """The (file, line, function) of each frame of `exc`'s traceback; None for an exception
    whose traceback says more than its frames and last line (chained, noted, SyntaxError)."""
    chained = exc.__cause__ is not None or (
        exc.__context__ is not None and not exc.__suppress_context__
    )
    if chained or isinstance(exc, SyntaxError) or hasattr(exc, "__notes__"):
        return None
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return tuple(frames)


def _last_line(exc_type, text):
    """The traceback's final line, as `traceback.format_exception_only` writes it."""
    module, name = exc_type.__module__, exc_type.__qualname__
    if module not in ("__main__", "builtins"):
        name = f"{module}.{name}"
    return f"{name}: {text}\n" if text else f"{name}\n"


@functools.lru_cache(maxsize=1024)
def _frames_text(frames):
    if not frames:
        return ""
    summary = traceback.StackSummary.from_list(
        [
            (filename, lineno, name, linecache.getline(filename, lineno).strip())
            for filename, lineno, name in frames
        ]
    )
    return "Traceback (most recent call last):\n" + "".join(summary.format())


def run_records(
    job,
    records,
    indexes,
    *,
    batch_id,
    attempt,
    stop_on_first=False,
    savepoints=False,
    keep_going=None,
    limits=None,
    requeue=None,
):
    """Run the job's processor on `records[i]` for each i of `indexes`; return what failed.

    `records` is anything the indexes index: a batch's list of records, or
    {index: payload} for requeued entries. With `savepoints`, each record runs
    in its own savepoint, so a failing record's database writes roll back
    while the others' stay. `keep_going`, asked before each record, stops the
    run early (the claim was lost: the rest would be work thrown away).
    The failures are not logged here: their caller logs them with log_failures once it
    knows their error groups.
    `limits` (TimeLimits) times each record out with RecordTimeout, and stops the
    run at the attempt's deadline: the records not finished come back in `left`
    (under `stop_on_first`, fail_batch, the deadline is the batch's failure).
    `requeue` (replay.Requeue) is what the processor sees as ctx.requeue.
    """
    processor = registry.get(job.processor)
    if processor is None:
        # Every record would fail the same way: say so once, not once a record.
        missing = LookupError(f"unknown processor {job.processor!r}")
        log.error(
            "job %s: unknown processor %r: the %d records of batch %d fail (attempt %d)",
            job.name,
            job.processor,
            len(indexes),
            batch_id,
            attempt,
        )
        capture = Capture()
        failures = [capture.failure(i, missing) for i in indexes]
        return RunResult(len(failures), failures[:1] if stop_on_first else failures, logged=True)
    ctx = ProcessorContext(
        job=job,
        config=job.config or {},
        batch_id=batch_id,
        attempt=attempt,
        logger=logging.getLogger(f"velo.job.{job.name}"),
        requeue=requeue,
    )
    limits = limits or TimeLimits()
    capture = Capture(job=job)
    failures, left = [], []
    attempted = 0
    with limits:
        for position, index in enumerate(indexes):
            if keep_going is not None and not keep_going():
                break
            if limits.out_of_time():
                left = list(indexes[position:])
                break
            attempted += 1
            if index in limits.timed_out:
                failure = RecordFailure(
                    index,
                    RECORD_TIMEOUT,
                    record_timeout_message(
                        limits.timed_out[index], "its worker process was stopped by the watchdog"
                    ),
                )
            else:
                ctx.index = index
                try:
                    failure = _run_one(
                        processor, records[index], ctx, index, limits, savepoints, capture
                    )
                except BatchTimeout:
                    attempted -= 1  # interrupted: it runs again, whole, with the rest
                    left = list(indexes[position:])
                    break
            if failure is None:
                continue
            failures.append(failure)
            if stop_on_first:
                break
    if left and stop_on_first:
        # fail_batch: running out of time fails the batch, like a failed record would.
        cause = f"Batch attempt took longer than its batch_timeout ({job.batch_timeout:g} s)"
        return RunResult(attempted, [RecordFailure(left[0], BATCH_TIMEOUT, cause)])
    return RunResult(attempted, failures, tuple(left))


def log_failures(job_name, failures, groups, *, where, summary):
    """Log failures, stored in `groups` (one per failure, in order), as SPEC §4 says.

    The first VELO_LOG_FAILURES_PER_GROUP failures of each error group are logged in full,
    one WARNING line each; then one WARNING line per group with the number not logged,
    so a storm of one error is a few lines, not one a record. `where(position)` is the
    (batch id, attempt) of failures[position]; `summary` names them all in that line
    ("batch 17 attempt 1").
    """
    if not failures or not log.isEnabledFor(logging.WARNING):
        return
    per_group = settings.VELO_LOG_FAILURES_PER_GROUP
    counts, first = Counter(), {}
    for position, (failure, group) in enumerate(zip(failures, groups, strict=True)):
        counts[group.pk] += 1
        seen = counts[group.pk]
        if seen == 1:
            first[group.pk] = failure
        if seen <= per_group:
            batch_id, attempt = where(position)
            log.warning(
                "job %s: record %d of batch %d failed (attempt %d): %s: %s",
                job_name,
                failure.index,
                batch_id,
                attempt,
                failure.error_type,
                bounded.for_log(failure.message, failure.original_length),
            )
    for group_id, count in counts.items():
        if count > per_group:
            like = first[group_id]
            log.warning(
                'job %s: %s: %s more failures like "%s" (group %d) not logged',
                job_name,
                summary,
                f"{count - per_group:,}",
                bounded.for_log(like.message, like.original_length),
                group_id,
            )


def _run_one(processor, record, ctx, index, limits, savepoints, capture):
    """One record under its time limit: None, or how it failed (BatchTimeout propagates)."""
    try:
        try:
            limits.enter(index)
            if savepoints:
                with transaction.atomic():
                    processor.func(record, ctx)
                    limits.check()
            else:
                processor.func(record, ctx)
                limits.check()
        finally:
            limits.leave()
    except BatchTimeout:
        raise
    except Exception as exc:  # a processor fails a record by raising anything
        return capture.failure(index, exc, record)
    return None


def run_then_commit(job, run, commit):
    """`commit(run(savepoints=...))` in the transaction shape the job's processor needs.

    A transactional processor's records run inside the transaction that
    commits the bookkeeping, each in a savepoint: a failed record's writes roll
    back, the others' commit exactly once with it. Any other processor runs
    first, outside any transaction, so no write lock is held while records run.
    """
    if resolve(job.processor).transactional:
        with transaction.atomic():
            return commit(run(savepoints=True))
    result = run(savepoints=False)
    with transaction.atomic():
        return commit(result)
