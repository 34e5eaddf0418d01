"""One beat tick: hand out again the work of dead workers, then send everything that is due.

Beat runs it every VELO_DISPATCH_INTERVAL seconds (dlq.tasks.dispatch_due_batches).
A batch waits for its retry as a due time in its row, and a batch or run whose
message was lost (a broker outage, a worker killed before it acknowledged) is
sent again once its dispatch stamp is stale, so nothing accepted is ever lost.

Stale means VELO_REDISPATCH_AFTER_SECONDS (300 s) while messages wait at the
broker, but only VELO_REDISPATCH_IDLE_SECONDS (5 s) when Velo's queue is empty:
a row still queued seconds after its message was sent, with nothing waiting,
lost that message (a broker restarted without persistence, a worker SIGKILLed
with it prefetched, which Redis would hand back only after its visibility
timeout of an hour). A message sent again is harmless: the claim is conditional,
so a second delivery finds nothing to do. Counting the queue is one LLEN a tick.

A paused job's batches are not sent; a resumed job's are sent by its release,
at its pace (dlq.pause).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import dispatch, pause, regroup, requeue
from .engine.lease import recover_stalled
from .models import Batch, RegroupRun, RequeueRun

DISPATCH_LIMIT = 1000


def tick(now=None):
    """Recover the work of dead workers, then send everything due; return how much was sent."""
    now = now or timezone.now()
    recover_stalled(now)
    requeue.recover_expired_claims(now)
    requeue.recover_stalled_runs(now)
    regroup.recover_stalled_runs(now)
    stale_after = redispatch_after(dispatch.waiting_messages())
    released = pause.release_due(now, _not_on_its_way(now, stale_after), DISPATCH_LIMIT)
    return released + sum(
        len(dispatch.send_rows(model, ids))
        for model, ids in (
            (Batch, due_batch_ids(now, stale_after=stale_after)),
            (RequeueRun, due_run_ids(now, stale_after=stale_after)),
            (RegroupRun, due_run_ids(now, RegroupRun, stale_after=stale_after)),
        )
    )


def redispatch_after(waiting):
    """Seconds after which a sent row still queued is sent again, given the messages waiting."""
    if waiting == 0:
        return settings.VELO_REDISPATCH_IDLE_SECONDS
    return settings.VELO_REDISPATCH_AFTER_SECONDS


def _not_on_its_way(now, stale_after=None):
    if stale_after is None:
        stale_after = settings.VELO_REDISPATCH_AFTER_SECONDS
    stale = now - timedelta(seconds=stale_after)
    return Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)


def due_batch_ids(now, limit=DISPATCH_LIMIT, stale_after=None):
    return list(
        Batch.objects.filter(
            _not_on_its_way(now, stale_after),
            Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True),
            pause.running_jobs(),
            status__in=(Batch.Status.QUEUED, Batch.Status.RETRYING),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def due_run_ids(now, model=RequeueRun, limit=DISPATCH_LIMIT, stale_after=None):
    """Queued runs (requeue or regroup) with no message on its way; a paced requeue run
    only once its next chunk is due."""
    runs = model.objects.filter(_not_on_its_way(now, stale_after), status=model.Status.QUEUED)
    if model is RequeueRun:
        runs = runs.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return list(runs.order_by("pk").values_list("pk", flat=True)[:limit])
