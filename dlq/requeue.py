"""Requeue runs: many DLQ entries re-run in the background, with progress (SPEC §7).

A run acts on explicit ids, or on a filter cut at the newest id the operator
saw, so entries that arrive later are never swept in. It works through its
entries in id order, a chunk at a time, keeping a cursor, so a run whose
worker died resumes where it stopped. It honours a rate limit, stops when
cancelled, and as a canary stops by itself when its first entries fail too
often. A dry run only counts.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import audit, reprocess
from .models import DLQEntry, OperatorAction, RequeueRun

log = logging.getLogger(__name__)
FILTER_KEYS = ("job", "error_group", "batch")
DEFAULT_CANARY_MAX_FAILURE_RATIO = 0.5


class InvalidRequeue(ValueError):
    """A requeue that cannot start, with what is wrong."""


def selection(run):
    """The pending entries the run still has to reach."""
    entries = DLQEntry.objects.filter(status=DLQEntry.Status.PENDING, pk__gt=run.last_id)
    if run.entry_ids is not None:
        entries = entries.filter(pk__in=run.entry_ids)
    filters = run.filters or {}
    if "job" in filters:
        entries = entries.filter(job__name=filters["job"])
    if "error_group" in filters:
        entries = entries.filter(error_group_id=filters["error_group"])
    if "batch" in filters:
        entries = entries.filter(batch_id=filters["batch"])
    if run.max_id is not None:
        entries = entries.filter(pk__lte=run.max_id)
    return entries


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

    `background` sends it to a worker after commit; otherwise it runs here and
    now (one entry from the admin's detail page, with the outcome on screen).
    """
    filters = {key: value for key, value in (filters or {}).items() if value not in (None, "")}
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise InvalidRequeue(f"unknown filter {sorted(unknown)}; use {', '.join(FILTER_KEYS)}")
    if entry_ids is None and not filters:
        raise InvalidRequeue("name the entries: ids, or a filter (job, error_group, batch)")
    if entry_ids is not None:
        entry_ids = sorted({int(pk) for pk in entry_ids})
    if rate_limit is not None and rate_limit <= 0:
        raise InvalidRequeue("rate_limit must be a positive number of entries per second")
    if canary_size is not None and canary_size <= 0:
        raise InvalidRequeue("canary_size must be a positive number of entries")
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
        run.total = selection(run).count()
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
            _send_on_commit(run.pk)
    if not dry_run and not background:
        execute_run(run.pk)
        run.refresh_from_db()
    return run


def _describe(run):
    if run.entry_ids is not None:
        return f"{len(run.entry_ids)} selected DLQ entries"
    parts = [f"{key}={value}" for key, value in sorted(run.filters.items())]
    return "DLQ entries where " + ", ".join(parts) + (f" (id ≤ {run.max_id})" if run.max_id else "")


def _send_on_commit(run_id):
    from .dispatch import send_run_on_commit

    send_run_on_commit(run_id)


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
    started = time.monotonic()
    done_at_start = run.done
    canary_pending = bool(run.canary_size) and run.done < run.canary_size
    while True:
        if RequeueRun.objects.filter(pk=run_id, cancel_requested=True).exists():
            return _end(run, RequeueRun.Status.CANCELLED, "cancelled by an operator")
        size = _chunk_size(run, canary_pending)
        ids = list(selection(run).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return _end(run, RequeueRun.Status.FINISHED, "")
        entries = reprocess.claim(ids, run)
        result = reprocess.reprocess(entries, run, started_by=run.created_by) if entries else None
        _record_progress(run, ids, result)
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


def _chunk_size(run, canary_pending):
    size = settings.VELO_REQUEUE_CHUNK
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
