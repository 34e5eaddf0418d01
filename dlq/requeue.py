"""Requeue runs: many DLQ entries re-run in the background, with progress (SPEC §7).

A run acts on explicit ids, or on a filter cut at the newest id the operator
saw, so entries that arrive later are never swept in. It works through its
entries in id order, a chunk at a time, keeping a cursor, so a run whose
worker died resumes where it stopped. It honours a rate limit, stops when
cancelled, and as a canary stops by itself when its first entries fail too
often. A dry run only counts.
"""

import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Subquery
from django.utils import timezone

from common.heartbeat import Renewer

from . import audit, dispatch, reprocess
from .claim_ahead import ClaimAhead
from .models import DLQEntry, Job, OperatorAction, RequeueRun

log = logging.getLogger(__name__)
FILTER_KEYS = ("job", "error_group", "batch")
DEFAULT_CANARY_MAX_FAILURE_RATIO = 0.5
# Ids sent to the database at once when walking an id list.
ID_SLICE = 1000
# What a chunk aims to take, in seconds.
CHUNK_SECONDS = 1.0
# A run starts with a small chunk (nothing is known yet of its processor's
# speed) and grows at most this many times a chunk.
FIRST_CHUNK = 50
CHUNK_GROWTH = 4


class InvalidRequeue(ValueError):
    """A requeue that cannot start, with what is wrong."""


def selection(run, after=None):
    """The pending entries the run still has to reach (for a filter; ids go by next_ids):
    those past its cursor, or past `after`."""
    after = run.last_id if after is None else after
    entries = DLQEntry.objects.filter(status=DLQEntry.Status.PENDING, pk__gt=after)
    filters = run.filters or {}
    if "job" in filters:
        # The job's id, not a join on its name: the walk then runs along
        # (job, status, id) in id order.
        job_id = Job.objects.filter(name=filters["job"]).values("pk")[:1]
        entries = entries.filter(job_id=Subquery(job_id))
    if "error_group" in filters:
        entries = entries.filter(error_group_id=filters["error_group"])
    if "batch" in filters:
        entries = entries.filter(batch_id=filters["batch"])
    if run.max_id is not None:
        entries = entries.filter(pk__lte=run.max_id)
    return entries


def next_ids(run, size, after=None):
    """The next `size` ids the run has to try, in id order (past `after`, or its cursor).

    An id list is walked in slices, never sent whole, so a run over many
    thousands of ids stays within a database's limit on query parameters.
    """
    after = run.last_id if after is None else after
    entries = selection(run, after)
    if run.entry_ids is None:
        return list(entries.order_by("pk").values_list("pk", flat=True)[:size])
    ids = []
    remaining = [pk for pk in run.entry_ids if pk > after]
    for start in range(0, len(remaining), ID_SLICE):
        window = remaining[start : start + ID_SLICE]
        ids += entries.filter(pk__in=window).order_by("pk").values_list("pk", flat=True)
        if len(ids) >= size:
            break
    return ids[:size]


def count(run):
    """How many pending entries the run would reach now."""
    if run.entry_ids is None:
        return selection(run).count()
    return sum(
        selection(run).filter(pk__in=run.entry_ids[i : i + ID_SLICE]).count()
        for i in range(0, len(run.entry_ids), ID_SLICE)
    )


def _validated(entry_ids, filters, rate_limit, canary_size, canary_max_failure_ratio):
    """Input checked here, so every caller (admin, API, shell) gets InvalidRequeue, never a 500."""
    filters = {key: value for key, value in (filters or {}).items() if value not in (None, "")}
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise InvalidRequeue(f"unknown filter {sorted(unknown)}; use {', '.join(FILTER_KEYS)}")
    if entry_ids is None and not filters:
        raise InvalidRequeue("name the entries: ids, or a filter (job, error_group, batch)")
    try:
        if "job" in filters and not isinstance(filters["job"], str):
            raise ValueError(filters["job"])
        for key in ("error_group", "batch"):
            if key in filters:
                filters[key] = _positive_int(filters[key])
        if entry_ids is not None:
            entry_ids = sorted({_positive_int(pk) for pk in entry_ids})
    except (TypeError, ValueError):
        raise InvalidRequeue(
            "ids, error_group and batch are positive integers; job a name"
        ) from None
    if rate_limit is not None and not (math.isfinite(rate_limit) and rate_limit > 0):
        raise InvalidRequeue("rate_limit must be a positive number of entries per second")
    if canary_size is not None and canary_size <= 0:
        raise InvalidRequeue("canary_size must be a positive number of entries")
    if canary_max_failure_ratio is not None and not 0 <= canary_max_failure_ratio <= 1:
        raise InvalidRequeue("canary_max_failure_ratio must be between 0 and 1")
    return entry_ids, filters


def _positive_int(value):
    """An id given as an int or a string of digits; anything else (bool, 1.5, "x") is refused."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(value)
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


def start_run(
    *,
    created_by,
    user=None,
    via="admin",
    entry_ids=None,
    filters=None,
    max_id=None,
    dry_run=False,
    rate_limit=None,
    canary_size=None,
    canary_max_failure_ratio=None,
    background=True,
):
    """Create a run (and its audit row) and set it going; return it.

    A filter run acts on the entries that exist now (max_id defaults to the
    newest id). `background` sends it to a worker after commit; otherwise it
    runs here and now (one entry from the admin's detail page, outcome on screen).
    """
    entry_ids, filters = _validated(
        entry_ids, filters, rate_limit, canary_size, canary_max_failure_ratio
    )
    if entry_ids is None and max_id is None:
        max_id = DLQEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with transaction.atomic():
        run = RequeueRun(
            entry_ids=entry_ids,
            filters=filters,
            max_id=max_id,
            dry_run=dry_run,
            rate_limit=rate_limit,
            canary_size=canary_size,
            canary_max_failure_ratio=(
                canary_max_failure_ratio
                if canary_max_failure_ratio is not None
                else DEFAULT_CANARY_MAX_FAILURE_RATIO
                if canary_size
                else None
            ),
            created_by=created_by,
        )
        run.total = count(run)
        if dry_run:
            run.status = RequeueRun.Status.FINISHED
            run.finished_at = timezone.now()
        run.save()
        audit.record(
            OperatorAction.Action.REQUEUE,
            user=user,
            username=created_by,
            via=via,
            target=_describe(run),
            count=run.total,
            filters=filters,
            entry_ids=entry_ids,
            dry_run=dry_run,
            outcome=f"{run.total} entries would be requeued" if dry_run else "started",
            requeue_run=run,
        )
        if not dry_run and background:
            dispatch.send_run_on_commit(run.pk)
    if not dry_run and not background:
        execute_run(run.pk)
        run.refresh_from_db()
    return run


def _describe(run):
    if run.entry_ids is not None:
        return f"{len(run.entry_ids)} selected DLQ entries"
    parts = [f"{key}={value}" for key, value in sorted(run.filters.items())]
    cut = f" (id ≤ {run.max_id})" if run.max_id is not None else ""
    return "DLQ entries where " + ", ".join(parts) + cut


def cancel(run_id, *, user=None, username=None, via="admin"):
    """Ask a run to stop after its current chunk; a queued run stops at once."""
    with transaction.atomic():
        asked = RequeueRun.objects.filter(pk=run_id, status__in=RequeueRun.ACTIVE).update(
            cancel_requested=True
        )
        RequeueRun.objects.filter(pk=run_id, status=RequeueRun.Status.QUEUED).update(
            status=RequeueRun.Status.CANCELLED,
            finished_at=timezone.now(),
            stop_reason="cancelled before it started",
        )
        audit.record(
            OperatorAction.Action.CANCEL,
            user=user,
            username=username,
            via=via,
            target=f"requeue run {run_id}",
            outcome="cancel requested" if asked else "the run had already ended",
            requeue_run=RequeueRun.objects.filter(pk=run_id).first(),
        )
    return bool(asked)


def execute_run(run_id):
    """Work a run through to its end (the Celery task's body); return it."""
    now = timezone.now()
    claimed = RequeueRun.objects.filter(pk=run_id, status=RequeueRun.Status.QUEUED).update(
        status=RequeueRun.Status.RUNNING,
        heartbeat_at=now,
        started_at=now,
    )
    if not claimed:
        log.info("requeue run %s: not queued; nothing to do", run_id)
        return None
    run = RequeueRun.objects.get(pk=run_id)
    with Renewer.for_lease(
        lambda: _renew(run), settings.VELO_REQUEUE_CLAIM_SECONDS, f"requeue run {run_id}"
    ):
        return _work_through(run)


def _renew(run):
    """Keep the run and the entries it holds claimed while a chunk is being worked on."""
    now = timezone.now()
    DLQEntry.objects.filter(status=DLQEntry.Status.REQUEUED, requeue_run=run).update(
        claimed_until=now + timedelta(seconds=settings.VELO_REQUEUE_CLAIM_SECONDS)
    )
    return bool(
        RequeueRun.objects.filter(pk=run.pk, status=RequeueRun.Status.RUNNING).update(
            heartbeat_at=now
        )
    )


def _claim_chunk(run, after, size):
    """(the next `size` ids past `after`, the entries among them now claimed for the run, size)."""
    ids = next_ids(run, size, after)
    return ids, (reprocess.claim(ids, run) if ids else []), size


def _work_through(run):
    with ClaimAhead(
        lambda after, size: _claim_chunk(run, after, size),
        lambda ids: reprocess.release(ids, run),
    ) as ahead:
        return _work_chunks(run, ahead)


def _work_chunks(run, ahead):
    started = time.monotonic()
    done_at_start = run.done
    canary_pending = bool(run.canary_size) and run.done < run.canary_size
    size = min(FIRST_CHUNK, settings.VELO_REQUEUE_CHUNK)
    while True:
        if RequeueRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
            return _end(run, RequeueRun.Status.CANCELLED, "cancelled by an operator")
        chunk_started = time.monotonic()
        wanted = _chunk_size(run, canary_pending, size)
        ids, entries, asked = ahead.take() or _claim_chunk(run, run.last_id, wanted)
        if not ids:
            return _end(run, RequeueRun.Status.FINISHED, "")
        if len(ids) == asked and not canary_pending and not run.rate_limit:
            # A full chunk: there may be more; claim them while this one is worked on.
            ahead.start(ids[-1], wanted)
        result = reprocess.reprocess(entries, run, started_by=run.created_by) if entries else None
        _record_progress(run, ids, result)
        size = _next_size(size, asked, len(ids), time.monotonic() - chunk_started)
        if canary_pending and run.done >= run.canary_size:
            canary_pending = False
            ratio = run.failed / run.done if run.done else 0.0
            if ratio > run.canary_max_failure_ratio:
                return _end(
                    run,
                    RequeueRun.Status.CANCELLED,
                    (
                        f"canary stopped the run: {run.failed} of the first {run.done} entries "
                        f"failed ({ratio:.0%} > {run.canary_max_failure_ratio:.0%})"
                    ),
                )
        if run.rate_limit:
            # Sleep until this many entries are due at the limit, after every
            # chunk (the last one too), so the whole run keeps to the rate.
            due = started + (run.done - done_at_start) / run.rate_limit
            time.sleep(max(0.0, due - time.monotonic()))


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
        size = min(size, max(1, int(run.rate_limit / 4)))  # at least four steps a second
    return max(1, size)


def _record_progress(run, ids, result):
    claimed = result.claimed if result else 0
    changes = {
        "done": claimed - (result.skipped if result else 0),
        "succeeded": result.succeeded if result else 0,
        "failed": result.failed if result else 0,
        "skipped": len(ids) - claimed + (result.skipped if result else 0),
    }
    RequeueRun.objects.filter(pk=run.pk).update(
        last_id=ids[-1],
        heartbeat_at=timezone.now(),
        **{field: F(field) + amount for field, amount in changes.items()},
    )
    run.refresh_from_db()


def _end(run, status, reason):
    RequeueRun.objects.filter(pk=run.pk, status=RequeueRun.Status.RUNNING).update(
        status=status, stop_reason=reason, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    run.refresh_from_db()
    OperatorAction.objects.filter(requeue_run=run, action=OperatorAction.Action.REQUEUE).update(
        outcome=f"{run.status}: {run.succeeded} resolved, {run.failed} failed, "
        f"{run.skipped} skipped" + (f"; {reason}" if reason else "")
    )
    log.info("requeue run %s %s: %s/%s done", run.pk, run.status, run.done, run.total)
    return run


def recover_stalled_runs(now=None):
    """A running run whose worker stopped answering is queued again, to resume at its cursor."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.VELO_REQUEUE_CLAIM_SECONDS)
    return RequeueRun.objects.filter(
        status=RequeueRun.Status.RUNNING, heartbeat_at__lt=stale
    ).update(status=RequeueRun.Status.QUEUED, dispatched_at=None)
