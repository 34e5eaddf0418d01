"""One attempt at a batch: claim it, run its records, apply the strategy's plan, commit.

Plain Python: the Celery task only calls `process_batch(batch_id)`. An attempt
runs the processor over the batch's records, then commits, in one transaction
guarded by the batch's claim, everything it counts: the job's counters, the
error groups and occurrences, the DLQ entries and the batch's new status. A
redelivered task finds the batch already claimed or finished and does nothing.

Each record runs under its job's record_timeout and the attempt under its
batch_timeout (processors.limits): an attempt cut short commits what it finished
and leaves the rest to a new attempt, due at once, that uses up no retry.
"""

import functools
import logging
import math
import time
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common import bulk
from common import text as bounded
from errors.context import current as current_context
from errors.services import Failure, group_failures, save_occurrences

from .. import activity, processors
from ..models import (
    Batch,
    BatchDurationBucket,
    DLQEntry,
    DLQFullPolicy,
    FailureStrategy,
    JobCounters,
)
from ..processors.limits import TimeLimits
from ..processors.runner import (
    RecordFailure,
    RunResult,
    log_failures,
    run_records,
    run_then_commit,
)
from . import store
from .backoff import job_retry_delay
from .lease import LostClaim, claim_batch, lease_keeper, release
from .store import BATCH_FAILED, DeadLetter
from .strategies import DeadLetters, Retry, plan

log = logging.getLogger(__name__)


class _RolledBack(Exception):
    """Carries a fail_batch attempt's result out of the transaction it rolled back."""

    def __init__(self, result):
        self.result = result


def process_batch(batch_id):
    """Make one attempt at a batch; return its status afterwards, or None if it was not due."""
    claim = claim_batch(batch_id)
    if claim is None:
        return None
    try:
        with lease_keeper(claim):
            return _attempt(claim)
    except LostClaim as exc:
        log.warning("%s; leaving the batch to its new owner", exc)
        return None
    except BaseException as exc:
        # The attempt could not be recorded (database gone, worker shutting
        # down, results no database takes): nothing of it was committed, so
        # hand the batch back whole; it counts as a lost attempt.
        release(claim, exc)
        raise


def _attempt(claim):
    batch = claim.batch
    job = batch.job
    if batch.held_failures:
        # Already processed and counted: only their storing is left to do.
        with transaction.atomic():
            return _store_held(claim)
    if batch.lost_attempts >= settings.VELO_MAX_LOST_ATTEMPTS:
        return _give_up(claim)

    attempt = batch.attempts + 1
    indexes = _indexes_left(batch)
    fail_fast = job.failure_strategy == FailureStrategy.FAIL_BATCH
    limits = TimeLimits(
        record_timeout=job.record_timeout,
        deadline=time.monotonic() + job.batch_timeout,
        timed_out={int(index): seconds for index, seconds in (batch.timed_out or {}).items()},
        batch_id=batch.pk,
        token=claim.token,
    )
    run = functools.partial(
        run_records,
        job,
        batch.records,
        indexes,
        batch_id=batch.pk,
        attempt=attempt,
        stop_on_first=fail_fast,
        keep_going=claim.still_held,
        limits=limits,
    )
    if fail_fast and processors.resolve(job.processor).transactional:
        return _all_or_nothing(claim, attempt, run)
    return run_then_commit(job, run, functools.partial(_finish, claim, attempt))


def _all_or_nothing(claim, attempt, run):
    """fail_batch: one failure rolls back the processor's writes for the whole attempt;
    the bookkeeping of the failed attempt is still committed, in a transaction of its own."""
    try:
        with transaction.atomic():
            result = run()
            if result.failures:
                raise _RolledBack(result)
            return _finish(claim, attempt, result)
    except _RolledBack as rolled_back:
        with transaction.atomic():
            return _finish(claim, attempt, rolled_back.result)


def _indexes_left(batch):
    """The records the next attempt works on: all, or those retry_with_backoff retries."""
    if batch.pending_indexes is not None:
        return batch.pending_indexes
    return range(batch.record_count)


def _finish(claim, attempt, result, *, give_up=False):
    """Apply the strategy's plan to an attempt's result and commit its bookkeeping.

    Runs inside the caller's transaction. `give_up` dead-letters every failure
    whatever the strategy (the batch keeps killing its workers).
    """
    batch = claim.lock_batch()
    job = claim.batch.job
    counters = _lock_counters(job)
    now = timezone.now()  # under the job's lock: its entries' ids follow their times
    context = current_context()
    failures = result.failures
    delta = Counter()
    groups = group_failures(
        job.name,
        [Failure(f.error_type, f.message) for f in failures],
        now=now,
        rules=job.grouping_rules,
        job_id=job.pk,
        job_key=job.error_key,
    )
    if not result.logged:
        # Logged once grouped, in the transaction that stores them: a storm of one
        # error is a few lines per batch attempt, with the exact number not logged. An
        # attempt whose commit then fails (lost) logs them again when it runs again.
        log_failures(
            job.name,
            failures,
            groups,
            where=lambda _: (batch.pk, attempt),
            summary=f"batch {batch.pk} attempt {attempt}",
        )
    # Attempts cut short by batch_timeout are continuations, not retries.
    tries = attempt - batch.batch_timeouts
    next_step = plan(
        job.failure_strategy,
        failed=len(failures),
        retries_left=tries <= job.max_retries,
        dlq_enabled=job.dlq_enabled,
        give_up=give_up,
    )
    _count_attempt(batch, attempt, result, next_step, delta)
    if next_step.retry == Retry.FAILED_ONLY:
        batch.pending_indexes = [f.index for f in failures]
    if result.left:
        # Cut short by batch_timeout: what it finished is committed below, the rest waits.
        retried = batch.pending_indexes if next_step.retry == Retry.FAILED_ONLY else []
        batch.pending_indexes = sorted([*result.left, *retried])
        batch.batch_timeouts += 1
    batch.timed_out = None  # the watchdog's marks were spent on this attempt

    letters = _letters(next_step.dead_letters, batch, failures, groups, attempt)
    entries, overflow = (
        store.store(job, batch, letters, counters, now=now, context=context)
        if letters
        else ([], [])
    )
    save_occurrences(
        job.name,
        [(g, f.message, batch.pk) for f, g in zip(failures, groups, strict=True)],
        now=now,
        context=context,
    )
    _count_stored(batch, counters, entries, delta, now)

    held = False
    if overflow:
        counters.last_capacity_exceeded_at = now
        if job.dlq_full_policy == DLQFullPolicy.BACKPRESSURE:
            _hold(batch, job, overflow, tries=0, now=now, left=result.left)
            batch.final_status = _worse(batch.final_status, next_step.status)
            held = True
        else:
            _reject(batch, job, overflow, delta)

    # Written before _complete takes the batch's end, so that it counts in its duration.
    activity.record(
        batch.job_id, delta["records_processed"], delta["records_failed"], timezone.now()
    )
    if next_step.retry != Retry.NO:
        _schedule_retry(batch, job, tries, delta, now)
    elif result.left and not held:
        _continue(batch, job, next_step.status, delta, now)
    elif not held:
        _complete(batch, _worse(batch.final_status, next_step.status), delta)
    _save(batch, counters, delta)
    return batch.status


# The worse of two outcomes wins: a batch that dead-lettered records in one attempt
# stays partial when a later attempt (a continuation) finishes cleanly.
_OUTCOMES = ("", Batch.Status.SUCCEEDED, Batch.Status.PARTIAL, Batch.Status.FAILED)


def _worse(a, b):
    return max(a or "", b or "", key=_OUTCOMES.index)


def _continue(batch, job, outcome, delta, now):
    """The attempt ran out of batch_timeout: the records left run in a new attempt, now."""
    if outcome != Batch.Status.SUCCEEDED:
        batch.final_status = _worse(batch.final_status, outcome)
    batch.status = Batch.Status.RETRYING
    batch.next_attempt_at = now
    delta["batch_retries"] += 1
    log.warning(
        "job %s: batch %d ran out of its batch_timeout (%gs); %d records left for a new attempt",
        job.name,
        batch.pk,
        job.batch_timeout,
        len(batch.pending_indexes),
    )


def _count_attempt(batch, attempt, result, next_step, delta):
    """Records attempted and failed, on the batch and the job (fail_batch: all of them failed)."""
    failures = result.failures
    if next_step.whole_batch_failed:
        processed = failed = batch.record_count
    else:
        processed, failed = result.attempted, len(failures)
    batch.attempts = attempt
    batch.processed += processed
    batch.failed += failed
    delta["records_processed"] += processed
    delta["records_failed"] += failed
    delta["record_timeouts"] += result.record_timeouts
    if failures:
        batch.last_error = bounded.error_message(f"{failures[0].error_type}: {failures[0].message}")
    elif result.left:
        batch.last_error = f"BatchTimeout: {len(result.left)} records left for a new attempt"


def _schedule_retry(batch, job, attempt, delta, now):
    delay = job_retry_delay(job, attempt)
    batch.status = Batch.Status.RETRYING
    batch.next_attempt_at = now + timedelta(seconds=delay)
    delta["batch_retries"] += 1
    log.warning(
        "job %s: batch %d attempt %d failed; retry %d in %.1fs",
        job.name,
        batch.pk,
        attempt,
        attempt,
        delay,
    )


def _store_held(claim):
    """Try again to store the failures a full DLQ had no room for (backpressure)."""
    batch = claim.lock_batch()
    job = claim.batch.job
    counters = _lock_counters(job)
    now = timezone.now()  # under the job's lock, as in _finish
    delta = Counter()
    letters = [DeadLetter.from_json(data) for data in batch.held_failures["letters"]]
    entries, overflow = store.store(
        job, batch, letters, counters, now=now, context=current_context()
    )
    _count_stored(batch, counters, entries, delta, now)
    if overflow:
        counters.last_capacity_exceeded_at = now
        left = batch.held_failures.get("left", ())
        _hold(batch, job, overflow, tries=batch.held_failures["tries"] + 1, now=now, left=left)
    elif batch.held_failures.get("left"):
        # The attempt that held them had also run out of time: its records left come next.
        batch.held_failures = None
        _continue(batch, job, Batch.Status.SUCCEEDED, delta, now)
    else:
        batch.held_failures = None
        _complete(batch, batch.final_status or Batch.Status.PARTIAL, delta)
    _save(batch, counters, delta)
    return batch.status


def _give_up(claim):
    """A batch whose attempts keep ending unrecorded goes to the DLQ, rather than loop forever.

    Records already in the DLQ (a partly finished backpressure hold) stay as they are.
    """
    batch = claim.batch
    message = bounded.error_message(
        f"{batch.lost_attempts} attempts at this batch ended unrecorded "
        f"(last: {batch.last_error or 'unknown'})"
    )
    stored = set(DLQEntry.objects.filter(batch=batch).values_list("index", flat=True))
    indexes = _indexes_left(batch)
    failures = [
        RecordFailure(index=i, error_type="AttemptsLost", message=message)
        for i in indexes
        if i not in stored
    ]
    log.error(
        "job %s: batch %d: %s; dead-lettering it",
        batch.job.name,
        batch.pk,
        bounded.for_log(message),
    )
    with transaction.atomic():
        # Logged above, in one line for all.
        result = RunResult(len(failures), failures, logged=True)
        return _finish(claim, batch.attempts + 1, result, give_up=True)


def _letters(dead_letters, batch, failures, groups, attempt):
    """The failures on their way into the DLQ, as the plan says."""
    if dead_letters == DeadLetters.FAILED:
        return [
            DeadLetter(
                f.index,
                f.error_type,
                f.message,
                f.traceback,
                g.pk,
                attempt,
                message_length=f.original_length,
            )
            for f, g in zip(failures, groups, strict=True)
        ]
    if dead_letters == DeadLetters.WHOLE_BATCH:
        return _whole_batch_letters(batch, failures[0], groups[0], attempt)
    return []


def _whole_batch_letters(batch, cause, group, attempt):
    """fail_batch exhausted: every record goes, all in the failing record's group."""
    follower_message = store.batch_failed_message(cause.message)
    cause_length = cause.original_length
    return [
        DeadLetter(
            index=i,
            error_type=cause.error_type,
            message=cause.message if i == cause.index else follower_message,
            traceback=cause.traceback if i == cause.index else "",
            group_id=group.pk,
            attempts=attempt,
            message_length=cause_length if i == cause.index else len(BATCH_FAILED) + cause_length,
        )
        for i in range(batch.record_count)
    ]


def _lock_counters(job):
    counters, _ = JobCounters.objects.select_for_update().get_or_create(job=job)
    return counters


def _count_stored(batch, counters, entries, delta, now):
    if entries:
        batch.dlq_added += len(entries)
        delta["dlq_added"] += len(entries)
        delta["dlq_pending"] += len(entries)
        counters.last_entry_at = now


def _reject(batch, job, overflow, delta):
    batch.dlq_rejected += len(overflow)
    delta["dlq_rejected"] += len(overflow)
    log.error(
        "job %s: DLQ at capacity (%s entries): %d failed records of batch %d rejected",
        job.name,
        job.dlq_max_size,
        len(overflow),
        batch.pk,
    )


def _hold(batch, job, letters, *, tries, now, left=()):
    delay = job_retry_delay(job, tries + 1)
    batch.held_failures = {"letters": [letter.as_json() for letter in letters], "tries": tries}
    if left:
        batch.held_failures["left"] = list(left)
    batch.status = Batch.Status.RETRYING
    batch.next_attempt_at = now + timedelta(seconds=delay)
    log.error(
        "job %s: DLQ at capacity (%s entries): batch %d holds %d failed records, "
        "trying again in %.1fs",
        job.name,
        job.dlq_max_size,
        batch.pk,
        len(letters),
        delay,
    )


def _complete(batch, final, delta):
    """The batch is done: its outcome, its finished_at and its duration in the histogram.

    A batch's duration is finished_at - started_at: from its first claim (kept
    across retries, their backoff, batch_timeout continuations and backpressure
    holds) to the end of the attempt that finishes it. That end is taken here,
    after everything the attempt wrote for its records (fingerprinting and the
    error groups, the DLQ entries, the occurrences and rollups, the activity
    minute), so a batch slowed by those shows as slow; only the rows that carry
    the end itself (this bucket, the batch, the job's counters) and the commit
    come after it.
    """
    finished = timezone.now()
    batch.status = final
    batch.finished_at = finished
    batch.pending_indexes = None
    batch.next_attempt_at = None
    delta[f"batches_{final}"] += 1
    duration = max(0.0, (finished - (batch.started_at or finished)).total_seconds())
    delta["batch_duration_sum"] += duration
    observe_duration(batch.job_id, duration)


def observe_duration(job_id, seconds):
    """Count a finished batch into its job's stored duration histogram."""
    le = next((b for b in BatchDurationBucket.BOUNDS if seconds <= b), math.inf)
    bulk.merge_rows(
        BatchDurationBucket,
        [{"job_id": job_id, "le": le, "count": 1}],
        key=["job", "le"],
        add=["count"],
    )


def _save(batch, counters, delta):
    batch.claim_token = ""
    batch.lease_expires_at = None
    batch.dispatched_at = None
    batch.save(
        update_fields=[
            "status",
            "attempts",
            "processed",
            "failed",
            "dlq_added",
            "dlq_rejected",
            "pending_indexes",
            "held_failures",
            "final_status",
            "timed_out",
            "batch_timeouts",
            "last_error",
            "next_attempt_at",
            "dispatched_at",
            "claim_token",
            "lease_expires_at",
            "finished_at",
        ]
    )
    JobCounters.objects.filter(pk=counters.pk).update(
        **{field: F(field) + amount for field, amount in delta.items() if amount},
        last_entry_at=counters.last_entry_at,
        last_capacity_exceeded_at=counters.last_capacity_exceeded_at,
    )
