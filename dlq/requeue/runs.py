"""A requeue run's lifecycle: created, started, worked through in chunks, cancelled, recovered.

A run acts on its scope (dlq.requeue.scope): explicit ids, or a filter cut at
the newest id the operator saw, so entries that arrive later are never swept
in. It works through its entries in id order, a chunk at a time, keeping a
cursor, so a run whose worker died resumes where it stopped. It stops when
cancelled, and as a canary stops by itself when its first entries fail too
often. A dry run only counts.

A rate limit never holds a worker: a paced run works a chunk of about a
second's worth of its rate, then leaves the worker, queued again with a due
time (`next_attempt_at`), as a batch waits for its retry; beat's tick sends
it again once it is due (dlq.sweep). A waiting run holds no entry, so a
cancel ends it at once; a working one stops before its next chunk.
"""

import logging
import math
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from common.heartbeat import Renewer
from common.outage import DATABASE_AWAY, when_database_returns

from .. import audit, dispatch, liveness
from ..actors import Actor
from ..models import DLQAttempt, DLQEntry, OperatorAction, RequeueRun
from . import holds
from .entries import ChunkResult, back_to_pending, claim, release, reprocess
from .prefetch import ClaimAhead
from .scope import RequeueOptions, RequeueScope

log = logging.getLogger(__name__)
# What a chunk aims to take, in seconds.
CHUNK_SECONDS = 1.0
# A run starts with a small chunk (nothing is known yet of its processor's
# speed) and grows at most this many times a chunk.
FIRST_CHUNK = 50
CHUNK_GROWTH = 4
# A paced run's chunk is this many seconds of its rate; then it waits, off the worker.
PACE_SECONDS = 1.0
# How late a paced run may resume and still make up the time lost (beat ticks every
# second, a message takes a moment): later than this, its schedule starts again from
# now rather than bursting to catch up.
PACE_CREDIT_SECONDS = 2.0


def create_run(scope: RequeueScope, options: RequeueOptions, actor: Actor) -> RequeueRun:
    """Count a run over `scope`, save it and its audit row; return it, not yet started.

    A filter is cut at the newest entry that exists now. A dry run ends here,
    finished, having only counted. A run over entries a live run holds is refused
    with ScopeHeld (dlq.requeue.holds): one run per scope at a time.
    """
    scope = scope.cut()
    with transaction.atomic():
        if not options.dry_run:
            holds.lock_creation()
            holds.refuse_if_held(scope)
        run = RequeueRun(
            entry_ids=list(scope.entry_ids) if scope.entry_ids is not None else None,
            filters=scope.filters,
            max_id=scope.max_id,
            dry_run=options.dry_run,
            rate_limit=options.rate_limit,
            canary_size=options.canary_size,
            canary_max_failure_ratio=options.canary_ratio,
            fix=options.fix.as_json() if options.fix else None,
            created_by=actor.name,
        )
        run.total = scope.count()
        if options.dry_run:
            run.status = RequeueRun.Status.FINISHED
            run.finished_at = timezone.now()
        run.save()
        audit.record(
            OperatorAction.Action.FIX if options.fix else OperatorAction.Action.REQUEUE,
            actor=actor,
            target=scope.describe(),
            count=run.total,
            filters=scope.filters,
            entry_ids=scope.entry_ids,
            dry_run=options.dry_run,
            outcome=f"{run.total} entries would be requeued" if options.dry_run else "started",
            details={"fix": run.fix} if run.fix else None,
            requeue_run=run,
        )
    return run


def start_run(scope: RequeueScope, options: RequeueOptions, actor: Actor) -> RequeueRun:
    """Create a run and send it to a worker once it is committed; return it."""
    with transaction.atomic():
        run = create_run(scope, options, actor)
        if not run.dry_run:
            dispatch.send_run_on_commit(run.pk)
    return run


def run_here(scope: RequeueScope, options: RequeueOptions, actor: Actor) -> RequeueRun:
    """Create a run and work it through in this process; return it as it ended."""
    run = create_run(scope, options, actor)
    if not run.dry_run:
        work_here(run.pk)
        run.refresh_from_db()
    return run


def work_here(run_id: int, poll=0.2) -> None:
    """Work a run through in this process (the shell's way, no worker needed), waiting out
    its paces here: this process is the operator's, not a worker. Should a worker take
    the run when it is due (beat sends due runs), this follows it to its end instead."""
    while True:
        run = RequeueRun.objects.only("status", "next_attempt_at").get(pk=run_id)
        if run.status not in RequeueRun.ACTIVE:
            return
        wait = poll  # running on a worker: follow it
        if run.status == RequeueRun.Status.QUEUED:
            due = run.next_attempt_at or timezone.now()
            wait = (due - timezone.now()).total_seconds()
            if wait <= 0:
                execute_run(run_id)
                continue
        time.sleep(min(wait, poll))


def cancel(run_id: int, *, actor: Actor) -> bool:
    """Ask a run to stop after its current chunk; a queued run (not started yet, or waiting
    for its next chunk, which holds no entry) stops at once."""
    with transaction.atomic():
        asked = RequeueRun.objects.filter(pk=run_id, status__in=RequeueRun.ACTIVE).update(
            cancel_requested=True
        )
        RequeueRun.objects.filter(pk=run_id, status=RequeueRun.Status.QUEUED).update(
            status=RequeueRun.Status.CANCELLED,
            finished_at=timezone.now(),
            next_attempt_at=None,
            stop_reason=Case(
                When(started_at__isnull=True, then=Value("cancelled before it started")),
                default=Value("cancelled by an operator"),
            ),
        )
        audit.record(
            OperatorAction.Action.CANCEL,
            actor=actor,
            target=f"requeue run {run_id}",
            outcome="cancel requested" if asked else "the run had already ended",
            requeue_run=RequeueRun.objects.filter(pk=run_id).first(),
        )
    return bool(asked)


def execute_run(run_id: int) -> RequeueRun | None:
    """Work a run until it ends, or until its rate limit makes it wait (the Celery task's
    body); return it."""
    now = timezone.now()
    # A paced run only once it is due: a message that comes early (redelivered) does nothing.
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    token = secrets.token_hex(16)
    claimed = RequeueRun.objects.filter(due, pk=run_id, status=RequeueRun.Status.QUEUED).update(
        status=RequeueRun.Status.RUNNING,
        heartbeat_at=now,
        started_at=Coalesce("started_at", Value(now)),
        claim_token=token,
        **liveness.claim_fields(now),
    )
    if not claimed:
        log.info("requeue run %s: not queued, or not due yet; nothing to do", run_id)
        return None
    try:
        run = _resumed(run_id, now)
        with Renewer.for_lease(
            lambda: _renew(run), settings.VELO_REQUEUE_CLAIM_SECONDS, f"requeue run {run_id}"
        ):
            return _work_through(run)
    except DATABASE_AWAY:
        # The database went away (mid-chunk, or right after the claim): once it is back,
        # the run is queued again to resume at its cursor, and what it held is pending
        # again, in seconds rather than when its claims run out. (Not for errors that
        # would come back on every try, an IntegrityError say: those leave the run to
        # its lease.)
        when_database_returns(lambda: _queue_again(run_id, token), f"requeue run {run_id}")
        raise


def _resumed(run_id, now):
    """The claimed run, told where it goes on from."""
    run = RequeueRun.objects.get(pk=run_id)
    # Where the pace goes on from: the due time it waited for (None: not paced yet).
    run.paced_from = run.next_attempt_at
    if run.next_attempt_at is not None:
        # Resumed from a wait: its last chunk ended cleanly, the cursor is exact. The
        # stamp goes, so that a run that dies from here on is resumed as below.
        RequeueRun.objects.filter(pk=run_id).update(next_attempt_at=None)
    elif run.started_at < now:
        # Resumed after its worker died: the chunk it was on may have committed its
        # outcomes without moving the cursor; those entries must not run twice.
        run.attempted_up_to = (
            DLQAttempt.objects.filter(requeue_run=run).aggregate(top=Max("entry_id"))["top"] or 0
        )
    return run


def _queue_again(pk, token):
    """Queue a running run again, to resume at its cursor, with the entries it held pending
    again; False when another execution holds it now."""
    with transaction.atomic():
        # The run first, then its entries: the order a chunk's commit locks them in.
        if not RequeueRun.objects.filter(
            pk=pk, status=RequeueRun.Status.RUNNING, claim_token=token
        ).update(status=RequeueRun.Status.QUEUED, dispatched_at=None, claim_token=""):
            return False
        back_to_pending(DLQEntry.objects.filter(status=DLQEntry.Status.REQUEUED, requeue_run_id=pk))
        return True


def mark_timed_out(entry_id, token, seconds):
    """The watchdog is about to kill the process running `entry_id` (past its hard limit):
    remember the entry on its run and queue the run again at once; resumed, it fails that
    entry with RecordTimeout without running it. False if the stuck execution no longer
    holds the run (it ended, or was handed out)."""
    with transaction.atomic():
        run = (
            RequeueRun.objects.select_for_update()
            .filter(claim_token=token, status=RequeueRun.Status.RUNNING)
            .only("timed_out")
            .first()
        )
        if run is None or not token:
            return False
        RequeueRun.objects.filter(pk=run.pk).update(
            timed_out={**(run.timed_out or {}), str(entry_id): seconds}
        )
        return _queue_again(run.pk, token)


def _renew(run):
    """Keep the run and the entries it holds claimed while a chunk is being worked on."""
    now = timezone.now()
    held = bool(_held(run).update(heartbeat_at=now))
    if held:
        DLQEntry.objects.filter(status=DLQEntry.Status.REQUEUED, requeue_run=run).update(
            claimed_until=now + timedelta(seconds=settings.VELO_REQUEUE_CLAIM_SECONDS)
        )
    return held


def _held(run):
    """The run, while this execution of it still holds it (recovery gives a new one a new
    token: the old one then changes nothing)."""
    return RequeueRun.objects.filter(
        pk=run.pk, status=RequeueRun.Status.RUNNING, claim_token=run.claim_token
    )


def _claim_chunk(run, scope, after, size):
    """(the next `size` ids past `after`, the entries among them now claimed for the run, size)."""
    ids = scope.next_ids(size, after)
    return ids, (claim(ids, run) if ids else []), size


def _work_through(run):
    scope = RequeueScope.of_run(run)
    with ClaimAhead(
        lambda after, size: _claim_chunk(run, scope, after, size),
        lambda ids: release(ids, run),
    ) as ahead:
        return _work_chunks(run, scope, ahead)


def _work_chunks(run, scope, ahead):
    canary_pending = bool(run.canary_size) and run.done < run.canary_size
    size = min(FIRST_CHUNK, settings.VELO_REQUEUE_CHUNK)
    while True:
        if RequeueRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
            return _end(run, RequeueRun.Status.CANCELLED, "cancelled by an operator")
        chunk_started = time.monotonic()
        chunk_began_at, done_before = timezone.now(), run.done
        wanted = _chunk_size(run, canary_pending, size)
        ids, entries, asked = ahead.take() or _claim_chunk(run, scope, run.last_id, wanted)
        if not ids:
            return _end(run, RequeueRun.Status.FINISHED, "")
        if len(ids) == asked and not canary_pending and not run.rate_limit:
            # A full chunk: there may be more; claim them while this one is worked on.
            ahead.start(ids[-1], wanted)
        result = reprocess(entries, run, started_by=run.created_by) if entries else None
        if not _record_progress(run, ids, result):
            log.warning("requeue run %s was handed to another worker; stopping here", run.pk)
            return run
        size = _next_size(size, asked, len(ids), time.monotonic() - chunk_started)
        if canary_pending and run.done >= run.canary_size:
            canary_pending = False
            ratio = run.failed / run.done if run.done else 0.0
            if ratio > run.canary_max_failure_ratio:
                return _end(
                    run,
                    RequeueRun.Status.CANCELLED,
                    (
                        f"{RequeueRun.CANARY_STOP}: {run.failed} of the first {run.done} entries "
                        f"failed ({ratio:.0%} > {run.canary_max_failure_ratio:.0%})"
                    ),
                )
        if run.rate_limit:
            due = _next_due(run, chunk_began_at, run.done - done_before)
            if len(ids) < asked:  # a short chunk was the last: nothing to wait for
                return _end(run, RequeueRun.Status.FINISHED, "")
            if due > timezone.now():
                return _wait_until(run, due)


def _next_size(size, asked, used, seconds):
    """The size to ask for next, after a chunk asked for `asked` entries and got `used`.

    Chunks aim at about a second each: a cancel is heard soon, and a slow
    processor keeps a chunk's claims (and the one claimed ahead) out for only
    a second or two. Big chunks spread each chunk's dozen statements and two
    commits thin; they grow from a small first one, so a slow processor's
    first chunk is short too.
    """
    if used < asked:  # a short last chunk says nothing of the speed
        return size
    per_entry = seconds / used if used else 0.0
    target = int(CHUNK_SECONDS / per_entry) if per_entry else settings.VELO_REQUEUE_CHUNK
    return max(1, min(settings.VELO_REQUEUE_CHUNK, target, max(size, asked) * CHUNK_GROWTH))


def _chunk_size(run, canary_pending, size):
    if canary_pending:
        size = min(size, run.canary_size - run.done)
    if run.rate_limit:
        size = min(size, math.ceil(run.rate_limit * PACE_SECONDS))
    return max(1, size)


def _next_due(run, chunk_began_at, done):
    """When a paced run may go on after a chunk that did `done` entries: `done` at the rate
    after the time its chunk was due (or began, when it resumed too late to make up)."""
    base = run.paced_from
    if base is None or chunk_began_at - base > timedelta(seconds=PACE_CREDIT_SECONDS):
        base = chunk_began_at
    run.paced_from = base + timedelta(seconds=done / run.rate_limit)
    return run.paced_from


def _wait_until(run, due):
    """Leave the worker: queued again, due at `due`, for beat to send (dlq.sweep).

    Only a run still running and not asked to cancel waits: a cancel that came
    during the chunk ends it here and now rather than after the wait.
    """
    # Only while this execution holds it: an old execution must not park a new one's run.
    waiting = (
        _held(run)
        .filter(cancel_requested=False)
        .update(status=RequeueRun.Status.QUEUED, next_attempt_at=due, dispatched_at=None)
    )
    if not waiting:
        return _end(run, RequeueRun.Status.CANCELLED, "cancelled by an operator")
    run.refresh_from_db()
    log.info("requeue run %s: %s/%s done; waits until %s", run.pk, run.done, run.total, due)
    return run


def _record_progress(run, ids, result):
    """Add a chunk's counts: each of its ids is done, skipped, or not fixed, exactly once."""
    result = result or ChunkResult()
    changes = {
        "done": result.claimed - result.skipped - result.not_fixed,
        "succeeded": result.succeeded,
        "failed": result.failed,
        "skipped": len(ids) - result.claimed + result.skipped,
        "not_fixed": result.not_fixed,
    }
    now = timezone.now()
    held = _held(run).update(
        last_id=ids[-1],
        heartbeat_at=now,
        **{field: F(field) + amount for field, amount in changes.items()},
    )
    # Counted here as in the row, not read back: only the execution holding the run moves
    # its counts (one that lost it stops here).
    run.last_id, run.heartbeat_at = ids[-1], now
    for field, amount in changes.items():
        setattr(run, field, getattr(run, field) + amount)
    return bool(held)


def _end(run, status, reason):
    _held(run).update(
        status=status, stop_reason=reason, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    run.refresh_from_db()
    not_fixed = f", {run.not_fixed} not fixed" if run.fix else ""
    OperatorAction.objects.filter(
        requeue_run=run, action__in=(OperatorAction.Action.REQUEUE, OperatorAction.Action.FIX)
    ).update(
        outcome=f"{run.status}: {run.succeeded} resolved, {run.failed} failed, "
        f"{run.skipped} skipped{not_fixed}" + (f"; {reason}" if reason else "")
    )
    log.info("requeue run %s %s: %s/%s done", run.pk, run.status, run.done, run.total)
    return run


def recover_stalled_runs(now=None):
    """A running run whose worker died (dlq.liveness) or stopped answering is queued again,
    to resume at its cursor; the entries it held are pending again at once."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.VELO_REQUEUE_CLAIM_SECONDS)
    running = list(
        RequeueRun.objects.filter(status=RequeueRun.Status.RUNNING).values_list(
            "pk", "claim_token", "heartbeat_at", *liveness.HOLDER_FIELDS
        )
    )
    dead = liveness.lost_claims(((row[0], *row[3:]) for row in running), now)
    recovered = 0
    for pk, token, heartbeat_at, *_ in running:
        if pk not in dead and (heartbeat_at is None or heartbeat_at >= stale):
            continue
        if _queue_again(pk, token):
            recovered += 1
            log.warning("requeue run %s queued again: %s", pk, dead.get(pk, "it stopped answering"))
    return recovered
