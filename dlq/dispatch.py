"""Sending batches to the workers, and the beat-driven dispatcher that never lets one be lost.

The database, not the broker, says what is due: a batch waits for its retry
as a due time in its row, and the dispatcher (run by beat every second) sends
every due batch that has no message on its way. A broker outage therefore
loses nothing: the batch waits in the database until a send succeeds.
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
from .models import Batch

log = logging.getLogger(__name__)

DISPATCH_LIMIT = 1000
# After a failed send, requests stop trying the broker for this long: a dead
# Redis takes seconds to refuse (redis-py retries the connect), and the
# dispatcher sends the waiting batches once it is back.
BROKER_BACKOFF_SECONDS = 15.0
_broker_down_until = 0.0


def send(batch_ids):
    """Publish one task per batch; raises if the broker cannot be reached."""
    from .tasks import process_batch_task

    sent = []
    try:
        for batch_id in batch_ids:
            # No publish retries: a caller waiting on an HTTP request must not
            # hang on a dead broker; the dispatcher will try again.
            process_batch_task.apply_async((batch_id,), retry=False)
            sent.append(batch_id)
    finally:
        if sent:
            Batch.objects.filter(pk__in=sent).update(dispatched_at=timezone.now())
    return sent


def send_on_commit(batch_id):
    """After the batch is committed, try to send it; if the broker is down, beat will."""

    def try_send():
        global _broker_down_until
        if time.monotonic() < _broker_down_until:
            log.info("broker recently unreachable; batch %s waits for the dispatcher", batch_id)
            return
        try:
            send([batch_id])
        except (BrokerError, OSError) as exc:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            log.warning("broker unreachable (%s); batch %s waits for the dispatcher", exc, batch_id)

    transaction.on_commit(try_send)


def due_batch_ids(now, limit=DISPATCH_LIMIT):
    stale = now - timedelta(seconds=settings.VELO_REDISPATCH_AFTER_SECONDS)
    return list(
        Batch.objects.filter(
            Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale),
            status__in=(Batch.Status.QUEUED, Batch.Status.RETRYING),
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def dispatch_due():
    """Recover batches of dead workers, then send every due batch; return how many were sent."""
    now = timezone.now()
    recover_stalled(now)
    return len(send(due_batch_ids(now)))
