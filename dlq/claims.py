"""Claiming a batch for one attempt, so that it is processed exactly once in effect.

A worker claims a batch with a conditional UPDATE (SQLite has no SELECT … FOR
UPDATE): only a batch that is due and not running can be claimed, so a
redelivered task finds nothing to do. The claim carries a token and a lease;
the attempt's results are committed only while the token still holds, and a
batch whose lease ran out (its worker died) is handed out again.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .models import Batch

log = logging.getLogger(__name__)


class LostClaim(Exception):
    """The batch was handed to another worker while this one worked on it."""


@dataclass
class Claim:
    batch: Batch
    token: str

    def heartbeat(self):
        """Extend the lease; False when the claim has been lost."""
        return bool(
            Batch.objects.filter(pk=self.batch.pk, claim_token=self.token).update(
                lease_expires_at=_lease_end()
            )
        )

    def lock_batch(self):
        """Inside the attempt's transaction: lock the batch row, or raise LostClaim."""
        try:
            return Batch.objects.select_for_update().get(
                pk=self.batch.pk, claim_token=self.token, status=Batch.Status.RUNNING
            )
        except Batch.DoesNotExist:
            raise LostClaim(
                f"batch {self.batch.pk}: claim {self.token} is no longer held"
            ) from None


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.VELO_BATCH_LEASE_SECONDS)


def claim_batch(batch_id):
    """Claim a due batch for this worker, or return None if there is nothing to do."""
    now = timezone.now()
    token = secrets.token_hex(16)
    with transaction.atomic():
        claimed = Batch.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            pk=batch_id,
            status__in=(Batch.Status.QUEUED, Batch.Status.RETRYING),
        ).update(
            status=Batch.Status.RUNNING,
            claim_token=token,
            lease_expires_at=_lease_end(),
            started_at=Case(
                When(started_at__isnull=True, then=Value(now)), default=F("started_at")
            ),
        )
    if not claimed:
        log.info("batch %s: not due or already taken; nothing to do", batch_id)
        return None
    return Claim(Batch.objects.select_related("job").get(pk=batch_id), token)


def release(claim, *, delay_seconds=0.0):
    """Hand a claimed batch back (the attempt could not finish), to be tried again."""
    Batch.objects.filter(pk=claim.batch.pk, claim_token=claim.token).update(
        status=_status_before_claim(),
        claim_token="",
        lease_expires_at=None,
        dispatched_at=None,
        next_attempt_at=timezone.now() + timedelta(seconds=delay_seconds),
    )


def _status_before_claim():
    return Case(
        When(attempts=0, then=Value(Batch.Status.QUEUED)), default=Value(Batch.Status.RETRYING)
    )


def recover_stalled(now=None):
    """Hand out again every batch whose worker stopped renewing its lease."""
    now = now or timezone.now()
    recovered = Batch.objects.filter(status=Batch.Status.RUNNING, lease_expires_at__lt=now).update(
        status=_status_before_claim(),
        claim_token="",
        lease_expires_at=None,
        dispatched_at=None,
        next_attempt_at=now,
        worker_losses=F("worker_losses") + 1,
    )
    if recovered:
        log.warning("recovered %d batches whose worker stopped answering", recovered)
    return recovered
