"""Sending work to the workers, and the beat-driven dispatcher that never lets any be lost.

The database, not the broker, says what is due: a batch waits for its retry
as a due time in its row, and the dispatcher (run by beat every second) sends
every due batch and every queued requeue run that has no message on its way.
A broker outage therefore loses nothing: the work waits in the database until
a send succeeds. The dispatcher also hands out again the work of dead workers.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from .claims import recover_stalled
from .models import Batch, RequeueRun

log = logging.getLogger(__name__)

DISPATCH_LIMIT = 1000
# After a failed send, requests stop trying the broker for this long: a dead
# Redis takes seconds to refuse (redis-py retries the connect), and the
# dispatcher sends the waiting work once it is back.
BROKER_BACKOFF_SECONDS = 15.0
_broker_down_until = 0.0


def _tasks():
    from . import tasks

    return {Batch: tasks.process_batch_task, RequeueRun: tasks.execute_requeue_run}


def _send(model, ids, stamp=None):
    """Publish one task per row; raises if the broker cannot be reached.

    `stamp` is the dispatched_at the rows were already given (a new batch
    gets it in its INSERT); otherwise they are stamped here.
    """
    task = _tasks()[model]
    if not ids:
        return []
    # Stamped before publishing: a fast worker that finishes the attempt and
    # schedules a retry clears the stamp after this, never before it (which
    # would hide the retry from the dispatcher until the stamp went stale).
    if stamp is None:
        stamp = timezone.now()
        model.objects.filter(pk__in=ids).update(dispatched_at=stamp)
    sent = []
    try:
        for pk in ids:
            # No publish retries: a caller waiting on an HTTP request must not
            # hang on a dead broker; the dispatcher will try again.
            task.apply_async((pk,), retry=False)
            sent.append(pk)
    finally:
        unsent = [pk for pk in ids if pk not in set(sent)]
        if unsent:
            model.objects.filter(pk__in=unsent, dispatched_at=stamp).update(dispatched_at=None)
    return sent


def send(batch_ids):
    return _send(Batch, batch_ids)


def _send_on_commit(model, pk, stamp=None):
    def try_send():
        global _broker_down_until
        if time.monotonic() < _broker_down_until:
            log.info(
                "broker recently unreachable; %s %s waits for the dispatcher",
                model._meta.verbose_name,
                pk,
            )
            if stamp is not None:  # not on its way after all: the next tick sends it
                model.objects.filter(pk=pk, dispatched_at=stamp).update(dispatched_at=None)
            return
        try:
            _send(model, [pk], stamp)
        except (BrokerError, OSError) as exc:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            log.warning(
                "broker unreachable (%s); %s %s waits for the dispatcher",
                exc,
                model._meta.verbose_name,
                pk,
            )

    transaction.on_commit(try_send)


def send_on_commit(batch_id, stamp=None):
    """After the batch is committed, try to send it; if the broker is down, beat will.

    `stamp`: the batch was stored with this dispatched_at already.
    """
    _send_on_commit(Batch, batch_id, stamp)


def send_run_on_commit(run_id):
    _send_on_commit(RequeueRun, run_id)


def _not_on_its_way(now):
    stale = now - timedelta(seconds=settings.VELO_REDISPATCH_AFTER_SECONDS)
    return Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)


def due_batch_ids(now, limit=DISPATCH_LIMIT):
    return list(
        Batch.objects.filter(
            _not_on_its_way(now),
            Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True),
            status__in=(Batch.Status.QUEUED, Batch.Status.RETRYING),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def due_run_ids(now, limit=DISPATCH_LIMIT):
    return list(
        RequeueRun.objects.filter(_not_on_its_way(now), status=RequeueRun.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def dispatch_due():
    """Recover the work of dead workers, then send everything due; return how much was sent."""
    from .reprocess import recover_expired_claims
    from .requeue import recover_stalled_runs

    now = timezone.now()
    recover_stalled(now)
    recover_expired_claims(now)
    recover_stalled_runs(now)
    return len(_send(Batch, due_batch_ids(now))) + len(_send(RequeueRun, due_run_ids(now)))
