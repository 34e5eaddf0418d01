"""One beat tick: hand out again the work of dead workers, then send everything that is due.

Beat runs it every VELO_DISPATCH_INTERVAL seconds (dlq.tasks.dispatch_due_batches).
A batch waits for its retry as a due time in its row, and a batch or run whose
message was lost (a broker outage, a worker killed before it acknowledged) is
sent again once its dispatch stamp is stale, so nothing accepted is ever lost.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import dispatch, regroup, requeue
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
    return sum(
        len(dispatch.send_rows(model, ids))
        for model, ids in (
            (Batch, due_batch_ids(now)),
            (RequeueRun, due_run_ids(now)),
            (RegroupRun, due_run_ids(now, RegroupRun)),
        )
    )


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


def due_run_ids(now, model=RequeueRun, limit=DISPATCH_LIMIT):
    """Queued runs (requeue or regroup) with no message on its way; a paced requeue run
    only once its next chunk is due."""
    runs = model.objects.filter(_not_on_its_way(now), status=model.Status.QUEUED)
    if model is RequeueRun:
        runs = runs.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return list(runs.order_by("pk").values_list("pk", flat=True)[:limit])
