"""What a requeue does to each entry: claim it, run its processor again, commit the outcome.

An entry moves pending → requeued with a conditional UPDATE, so two operators
(or two runs) requeueing at once process it once. The processor then runs on
its payload; success → resolved, failure → back to pending with attempts + 1
and a new error occurrence. Everything an outcome counts is committed in one
transaction, and only for entries this claim still holds: an entry whose claim
ran out (its worker died) went back to pending and is left alone.
"""

import functools
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from common import bulk
from errors.context import current as current_context
from errors.models import ErrorGroup
from errors.services import Failure, group_failures, save_occurrences

from .. import backlog, history, redaction, tracebacks
from ..models import DLQAttempt, DLQEntry, Job, JobCounters, RequeueRun
from ..processors.limits import RECORD_TIMEOUT, TimeLimits, shared_alarm
from ..processors.replay import Requeue
from ..processors.runner import log_failures, run_records, run_then_commit
from .fix import FixDoesNotApply, PayloadFix

log = logging.getLogger(__name__)


@dataclass
class ClaimedEntry:
    """What a requeue reads of an entry it claimed (not its traceback or error text).

    Plain values, not a model instance: a chunk holds thousands.
    """

    pk: int
    job_id: int
    batch_id: int
    index: int
    payload: object
    payload_edited: bool
    attempts: int
    error_group_id: int
    job: object = None
    # What the run's fix changed in `payload` (None: the payload is as stored).
    diff: list | None = None


# ClaimedEntry's values, in its order: (name in the ORM, SQL on PostgreSQL).
CLAIMED = (
    ("pk", "id"),
    ("job_id", "job_id"),
    ("batch_id", "batch_id"),
    ("index", "index"),
    ("payload", "payload::text"),
    ("payload_edited", "original_payload IS NOT NULL"),
    ("attempts", "attempts"),
    ("error_group_id", "error_group_id"),
)
PAYLOAD = [name for name, _ in CLAIMED].index("payload")


@dataclass
class ChunkResult:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    not_fixed: int = 0


def claim(entry_ids, run):
    """Move the still-pending entries among `entry_ids` to requeued for `run`; return them.

    The entries keep their place in the DLQ's size (and capacity) until they
    resolve: a requeue that fails again must find its slot still there.
    """
    until = timezone.now() + timedelta(seconds=settings.VELO_REQUEUE_CLAIM_SECONDS)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            rows = sorted(_claim_returning(entry_ids, run, until))
        else:
            rows = _claim_portable(entry_ids, run, until)
    claimed = [ClaimedEntry(*row) for row in rows]
    # A chunk's entries mostly share a job or two: load each once, not one per row.
    jobs = Job.objects.in_bulk({entry.job_id for entry in claimed})
    for entry in claimed:
        entry.job = jobs[entry.job_id]
    return claimed


def release(entry_ids, run):
    """Hand back, untouched, entries `run` claimed but will not work on."""
    back_to_pending(
        DLQEntry.objects.filter(pk__in=entry_ids, status=DLQEntry.Status.REQUEUED, requeue_run=run)
    )


def back_to_pending(claimed):
    """Claimed entries, not worked on, pending again (their counters never moved)."""
    return claimed.update(status=DLQEntry.Status.PENDING, requeue_run=None, claimed_until=None)


def _claim_returning(entry_ids, run, until):
    """PostgreSQL: lock, move and read the entries in one statement.

    Rows are locked in id order, skipping those another claimer holds, so two
    runs over the same entries never deadlock or wait on each other; the ids
    go as one array parameter.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dlq_dlqentry SET status = %s, requeue_run_id = %s, claimed_until = %s"
            " WHERE id IN (SELECT id FROM dlq_dlqentry WHERE id = ANY(%s) AND status = %s"
            " ORDER BY id FOR UPDATE SKIP LOCKED)"
            f" RETURNING {', '.join(sql for _, sql in CLAIMED)}",
            [DLQEntry.Status.REQUEUED, run.pk, until, list(entry_ids), DLQEntry.Status.PENDING],
        )
        return [
            (*row[:PAYLOAD], json.loads(row[PAYLOAD]), *row[PAYLOAD + 1 :])
            for row in cursor.fetchall()
        ]


def _claim_portable(entry_ids, run, until):
    """Elsewhere (SQLite): the transaction holds the write lock, so a conditional UPDATE will do."""
    DLQEntry.objects.filter(pk__in=entry_ids, status=DLQEntry.Status.PENDING).update(
        status=DLQEntry.Status.REQUEUED, requeue_run=run, claimed_until=until
    )
    return list(
        DLQEntry.objects.filter(pk__in=entry_ids, status=DLQEntry.Status.REQUEUED, requeue_run=run)
        .annotate(payload_edited=Q(original_payload__isnull=False))
        .order_by("pk")
        .values_list(*(name for name, _ in CLAIMED))
    )


def reprocess(entries, run, *, started_by):
    """Fix (when the run carries a fix), run each claimed entry's processor and commit the
    outcomes; return the counts."""
    result = ChunkResult(claimed=len(entries))
    entries = _not_yet_attempted(entries, run, result)
    if run.fix:
        entries = _fix(entries, PayloadFix.from_json(run.fix), run, started_by, result)
    by_job = defaultdict(list)
    for entry in entries:
        by_job[entry.job_id].append(entry)
    for job_entries in by_job.values():
        job = job_entries[0].job
        run_then_commit(
            job,
            functools.partial(_run, job, job_entries, run),
            functools.partial(
                _commit, job, job_entries, run=run, started_by=started_by, result=result
            ),
        )
    return result


def _not_yet_attempted(entries, run, result):
    """The entries this run has not run yet; the others are handed back, skipped.

    A run whose worker died after committing a chunk's outcomes but before
    moving its cursor resumes on that chunk again: its entries that failed
    again are pending once more, and must not be run (or fixed) a second time.
    """
    attempted_up_to = getattr(run, "attempted_up_to", 0)
    if not entries or entries[0].pk > attempted_up_to:
        return entries  # past what it ran before it was resumed (or never resumed)
    done = set(
        DLQAttempt.objects.filter(
            requeue_run=run, entry_id__in=[e.pk for e in entries]
        ).values_list("entry_id", flat=True)
    )
    if done:
        release(done, run)
        result.skipped += len(done)
    return [e for e in entries if e.pk not in done]


def _fix(entries, fix, run, started_by, result):
    """The entries the fix applies to, their payloads fixed in memory (stored only with
    their outcome); the others go back to pending as they were, each with an attempt
    row that says why."""
    fixed, refused = [], {}
    for entry in entries:
        try:
            entry.payload, entry.diff = fix.apply(entry.payload)
        except FixDoesNotApply as exc:
            # The reason is stored and shown to whoever may view entries: without the
            # record's secrets ("a test does not hold: <the value>").
            redactor = redaction.for_job(entry.job)  # claimed entries carry their job
            refused[entry.pk] = redactor.scrub(str(exc), entry.payload)
        else:
            fixed.append(entry)
    if refused:
        now, node_id = timezone.now(), current_context().node_id
        with transaction.atomic():
            # Only entries this run still holds: one whose claim ran out is another's now.
            held = set(
                DLQEntry.objects.select_for_update()
                .filter(pk__in=refused, status=DLQEntry.Status.REQUEUED, requeue_run=run)
                .values_list("pk", flat=True)
            )
            release(held, run)
            bulk.insert_rows(
                DLQAttempt,
                [
                    _attempt_row(
                        pk,
                        run,
                        started_by,
                        DLQAttempt.Outcome.NOT_FIXED,
                        why,
                        now,
                        node_id=node_id,
                    )
                    for pk, why in refused.items()
                    if pk in held
                ],
            )
        result.not_fixed += len(held)
        result.skipped += len(refused) - len(held)
    return fixed


def _attempt_row(
    entry_id, run, started_by, outcome, message, now, *, node_id, edited=False, diff=None
):
    return {
        "entry_id": entry_id,
        "kind": DLQAttempt.Kind.REQUEUE,
        "started_by": started_by,
        "outcome": outcome,
        "error_message": message,
        "node_id": node_id,
        "requeue_run_id": run.pk,
        "payload_edited": edited,
        "payload_diff": diff,
        "at": now,
    }


def _run(job, entries, run, *, savepoints):
    """Failures by entry id. Entries are run one by one: each has its own attempt number.

    Each has the job's record_timeout: the soft limit, and the watchdog's hard one,
    which knows an entry by a negative id in its slot (dlq.engine.watchdog); an entry
    the watchdog stopped before the run was resumed fails without running again.
    """
    failures = {}
    stopped = run.timed_out or {}
    with shared_alarm():
        for entry in entries:
            seconds = stopped.get(str(entry.pk))
            outcome = run_records(
                job,
                {entry.index: entry.payload},
                [entry.index],
                batch_id=entry.batch_id,
                attempt=entry.attempts + 1,
                savepoints=savepoints,
                limits=TimeLimits(
                    record_timeout=job.record_timeout,
                    timed_out={entry.index: seconds} if seconds is not None else {},
                    batch_id=-entry.pk,
                    token=getattr(run, "claim_token", ""),
                ),
                requeue=Requeue(
                    run_id=run.pk,
                    attempt=entry.attempts + 1,
                    payload_edited=entry.payload_edited or entry.diff is not None,
                ),
            )
            if outcome.failures:
                failures[entry.pk] = outcome.failures[0]
    return failures


def still_holds(run):
    """Lock the run, and say whether this execution still holds it.

    FOR NO KEY UPDATE: it keeps out recovery, a cancel and the watchdog (each updates the
    run) as FOR UPDATE did, but not the foreign-key checks of the chunk claimed ahead
    meanwhile, which would wait for this commit to end.
    """
    return (
        RequeueRun.objects.select_for_update(no_key=True)
        .filter(
            pk=run.pk,
            status=RequeueRun.Status.RUNNING,
            claim_token=getattr(run, "claim_token", ""),
        )
        .exists()
    )


def _commit(job, entries, failures, *, run, started_by, result):
    now = timezone.now()
    # The run first (recovery locks it before its entries): an execution whose run was
    # handed to another worker (its worker declared dead) commits nothing.
    run_held = still_holds(run)
    # Each held entry's group as it is now: a regroup may have moved it since its claim.
    resolved_here = run_held and not failures and connection.vendor == "postgresql"
    if resolved_here:
        held = _resolve_held(entries, run, now)
    else:
        held = dict(
            DLQEntry.objects.select_for_update()
            .filter(
                pk__in=[e.pk for e in entries], status=DLQEntry.Status.REQUEUED, requeue_run=run
            )
            .values_list("pk", "error_group_id")
            if run_held
            else ()
        )
    # Lock order as the engine and discard take it: entries, the job's counters, then
    # groups (group_failures and the backlogs below), so no two of them wait in a cycle.
    list(JobCounters.objects.select_for_update().filter(job=job).values_list("pk", flat=True))
    lost = [e for e in entries if e.pk not in held]
    if lost:
        log.warning(
            "requeue run %s: %d entries' claims ran out; left as they are", run.pk, len(lost)
        )
    entries = [e for e in entries if e.pk in held]
    succeeded = [e for e in entries if e.pk not in failures]
    failed = [e for e in entries if e.pk in failures]

    if not resolved_here:
        DLQEntry.objects.filter(pk__in=[e.pk for e in succeeded]).update(
            status=DLQEntry.Status.RESOLVED,
            resolved_at=now,
            last_attempt_at=now,
            attempts=F("attempts") + 1,
            requeue_run=None,
            claimed_until=None,
        )
    groups = group_failures(
        job.name,
        [Failure(failures[e.pk].error_type, failures[e.pk].message) for e in failed],
        now=now,
        rules=job.grouping_rules,
        job_id=job.pk,
        job_key=job.error_key,
    )
    # As a batch attempt logs its failures, a chunk of the run (per job) logs its own.
    log_failures(
        job.name,
        [failures[e.pk] for e in failed],
        groups,
        where=lambda position: (failed[position].batch_id, failed[position].attempts + 1),
        summary=f"requeue run {run.pk}",
    )
    context = current_context()
    # The error each failure overwrites may be the entry's original attempt: its row first.
    history.store_originals([e.pk for e in failed])
    traces = tracebacks.store_heads([failures[e.pk].traceback for e in failed])
    _failed_again(failed, groups, failures, traces, now)
    save_occurrences(
        job.name,
        [(g, failures[e.pk].message, e.batch_id) for e, g in zip(failed, groups, strict=True)],
        now=now,
        context=context,
    )
    for entry in entries:
        if entry.diff is not None:
            # The fixed payload is kept with its outcome; the first original stays.
            DLQEntry.objects.filter(pk=entry.pk).update(
                payload=entry.payload,
                original_payload=Coalesce("original_payload", "payload"),
            )
    bulk.insert_rows(
        DLQAttempt,
        [
            _attempt_row(
                entry.pk,
                run,
                started_by,
                DLQAttempt.Outcome.FAILED if entry.pk in failures else DLQAttempt.Outcome.SUCCEEDED,
                failures[entry.pk].message if entry.pk in failures else "",
                now,
                node_id=context.node_id,
                edited=entry.payload_edited or entry.diff is not None,
                diff=entry.diff,
            )
            for entry in entries
        ],
    )
    backlogs = Counter()
    for entry in succeeded:
        backlogs[held[entry.pk]] -= 1
    for entry, group in zip(failed, groups, strict=True):
        backlogs[held[entry.pk]] -= 1
        backlogs[group.pk] += 1
    backlog.add(backlogs)
    JobCounters.objects.filter(job=job).update(
        record_timeouts=F("record_timeouts")
        + sum(failures[e.pk].error_type == RECORD_TIMEOUT for e in failed),
        dlq_requeued=F("dlq_requeued") + len(entries),
        dlq_resolved=F("dlq_resolved") + len(succeeded),
        dlq_pending=F("dlq_pending") - len(succeeded),
    )
    _resolve_groups_left_without_entries({held[e.pk] for e in succeeded})
    result.succeeded += len(succeeded)
    result.failed += len(failed)
    result.skipped += len(lost)


def _resolve_held(entries, run, now):
    """PostgreSQL, a chunk whose entries all succeeded: resolve those the run still holds and
    return {id: group id} of them, in one UPDATE ... RETURNING that locks them as the
    SELECT ... FOR UPDATE it stands for did: locking, then updating, wrote each row twice."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dlq_dlqentry SET status = %s, resolved_at = %s, last_attempt_at = %s,"
            " attempts = attempts + 1, requeue_run_id = NULL, claimed_until = NULL"
            " WHERE id = ANY(%s) AND status = %s AND requeue_run_id = %s"
            " RETURNING id, error_group_id",
            [
                DLQEntry.Status.RESOLVED,
                now,
                now,
                sorted(e.pk for e in entries),
                DLQEntry.Status.REQUEUED,
                run.pk,
            ],
        )
        return dict(cursor.fetchall())


def _failed_again(entries, groups, failures, traces, now):
    """Failed entries back to pending with their new error (`traces`: their tracebacks as
    dlq.tracebacks stores them), one more attempt and their new group: one UPDATE for all
    (common.bulk), where one per entry took most of a failing chunk's commit. Their original
    attempts have their rows now (history.store_originals)."""
    rows = [
        {
            "pk": entry.pk,
            "attempts": 1,
            "status": DLQEntry.Status.PENDING,
            "last_attempt_at": now,
            "error_message": failures[entry.pk].message,
            "error_message_length": failures[entry.pk].original_length,
            "error_type": failures[entry.pk].error_type,
            "traceback": trace.rest,
            "traceback_head": trace.head_id,
            "error_group": group.pk,
            "original_attempt_stored": True,
            "requeue_run": None,
            "claimed_until": None,
        }
        for entry, group, trace in zip(entries, groups, traces, strict=True)
    ]
    if rows:
        # One more attempt; every other field of the row overwrites the entry's.
        replace = [name for name in rows[0] if name not in ("pk", "attempts")]
        bulk.update_rows(DLQEntry, rows, add=["attempts"], replace=replace)


def _resolve_groups_left_without_entries(group_ids):
    """A group whose last waiting entry was just requeued successfully is resolved.

    One UPDATE with a NOT EXISTS per group: an index probe each on
    (error_group, status, id), however many entries the groups hold.
    """
    if not group_ids:
        return
    waiting = DLQEntry.objects.filter(
        error_group=OuterRef("pk"), status__in=(DLQEntry.Status.PENDING, DLQEntry.Status.REQUEUED)
    )
    ErrorGroup.objects.filter(pk__in=group_ids, status=ErrorGroup.Status.UNRESOLVED).exclude(
        Exists(waiting)
    ).update(status=ErrorGroup.Status.RESOLVED)


def recover_expired_claims(now=None):
    """Entries whose requeue claim ran out (the worker died) go back to pending."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(
            DLQEntry.objects.select_for_update(skip_locked=True)
            .filter(status=DLQEntry.Status.REQUEUED, claimed_until__lt=now)
            .values_list("pk", flat=True)[:10_000]
        )
        if not expired:
            return 0
        back_to_pending(DLQEntry.objects.filter(pk__in=expired, status=DLQEntry.Status.REQUEUED))
    log.warning(
        "%d requeued entries whose worker stopped answering are pending again", len(expired)
    )
    return len(expired)
