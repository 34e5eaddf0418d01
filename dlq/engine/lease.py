"""A batch's lease: claiming it for one attempt, so that it is processed exactly once in effect.

A worker claims a batch with a conditional UPDATE (SQLite has no SELECT … FOR
UPDATE): only a batch that is due and not running can be claimed, so a
redelivered task finds nothing to do. The claim carries a token and a lease;
the attempt's results are committed only while the token still holds, and a
batch whose worker died (dlq.liveness: within seconds) or whose lease ran out
is handed out again. Every attempt
that ends without its results recorded counts as lost; a batch that loses too
many goes to the DLQ whole instead of being retried forever. A paused job's
batches are not claimed (dlq.pause).
"""

import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from common import text as bounded
from common.heartbeat import Renewer
from common.outage import DATABASE_AWAY, when_database_returns

from .. import liveness
from ..models import Batch, Job, JobCounters

log = logging.getLogger(__name__)

# Backoff before an attempt that could not be recorded is tried again.
LOST_ATTEMPT_MAX_DELAY = 60.0


class LostClaim(Exception):
    """The batch was handed to another worker while this one worked on it."""


@dataclass
class Claim:
    batch: Batch
    token: str
    lost: threading.Event = field(default_factory=threading.Event)

    def heartbeat(self):
        """Extend the lease; False (and remembered) when the claim has been lost."""
        held = bool(
            Batch.objects.filter(pk=self.batch.pk, claim_token=self.token).update(
                lease_expires_at=_lease_end()
            )
        )
        if not held:
            self.lost.set()
        return held

    def still_held(self):
        return not self.lost.is_set()

    def lock_batch(self):
        """Inside the attempt's transaction: lock the batch row, or raise LostClaim.

        The records are not read again: a batch's records never change, and
        decoding them a second time cost as much as storing its failures.
        """
        try:
            locked = (
                Batch.objects.select_for_update()
                .defer("records")
                .get(pk=self.batch.pk, claim_token=self.token, status=Batch.Status.RUNNING)
            )
        except Batch.DoesNotExist:
            raise LostClaim(
                f"batch {self.batch.pk}: claim {self.token} is no longer held"
            ) from None
        locked.records = self.batch.records
        return locked


def lease_keeper(claim):
    """Keeps a batch claim's lease fresh while its attempt runs."""
    return Renewer.for_lease(
        claim.heartbeat, settings.VELO_BATCH_LEASE_SECONDS, f"batch {claim.batch.pk} lease"
    )


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.VELO_BATCH_LEASE_SECONDS)


def claim_batch(batch_id):
    """Claim a due batch for this worker, or return None if there is nothing to do."""
    now = timezone.now()
    token = secrets.token_hex(16)
    waiting = Batch.objects.filter(
        pk=batch_id, status__in=(Batch.Status.QUEUED, Batch.Status.RETRYING)
    )
    paused = Exists(Job.objects.filter(pk=OuterRef("job_id"), paused_at__isnull=False))
    with transaction.atomic():
        claimed = waiting.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), ~paused
        ).update(
            status=Batch.Status.RUNNING,
            claim_token=token,
            lease_expires_at=_lease_end(),
            **liveness.claim_fields(now),
            started_at=Case(
                When(started_at__isnull=True, then=Value(now)), default=F("started_at")
            ),
        )
    if not claimed:
        # Its message is spent: a paused job's batch waits unsent, for its resume to send.
        if waiting.filter(paused).update(dispatched_at=None):
            log.info("batch %s: its job is paused; the batch waits for its resume", batch_id)
        else:
            log.info("batch %s: not due or already taken; nothing to do", batch_id)
        return None
    try:
        return Claim(Batch.objects.select_related("job").get(pk=batch_id), token)
    except DATABASE_AWAY:
        # Claimed, then the database went away: nothing ran, so no attempt is lost;
        # handed back as soon as it answers, not when the lease runs out.
        when_database_returns(lambda: _unclaim(batch_id, token), f"batch {batch_id}")
        raise


def _unclaim(batch_id, token):
    Batch.objects.filter(pk=batch_id, claim_token=token).update(**handed_back(timezone.now()))


def release(claim, error):
    """Hand back a batch whose attempt could not be recorded; it counts as a lost attempt.

    The usual reason is the database going away mid-attempt: the hand-back waits for it
    to return (common.outage), so a restart costs the batch seconds, not its lease.
    """
    when_database_returns(lambda: _hand_back(claim, error), f"batch {claim.batch.pk}")


def _hand_back(claim, error):
    losses = claim.batch.lost_attempts + 1
    delay = min(2.0**losses, LOST_ATTEMPT_MAX_DELAY)
    Batch.objects.filter(pk=claim.batch.pk, claim_token=claim.token).update(
        **handed_back(
            timezone.now() + timedelta(seconds=delay),
            lost_attempts=F("lost_attempts") + 1,
            last_error=unrecorded_reason(error),
        )
    )


def unrecorded_reason(error):
    """Why an attempt was not recorded, as the batch (and maybe every record) keeps it: the
    error's first line only, bounded. A database error's DETAIL can quote the whole failing
    row ("Failing row contains (...)"), payload and secrets included."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return bounded.error_message(f"attempt not recorded: {type(error).__name__}: {first_line}")


def handed_back(due, **more):
    """The fields of a claimed batch handed back (unclaimed, due at `due`), with `more`."""
    return {
        "status": _status_before_claim(),
        "claim_token": "",
        "lease_expires_at": None,
        "dispatched_at": None,
        "next_attempt_at": due,
        **more,
    }


def _status_before_claim():
    return Case(
        When(attempts=0, then=Value(Batch.Status.QUEUED)), default=Value(Batch.Status.RETRYING)
    )


def recover_stalled(now=None):
    """Hand out again every batch whose worker died (dlq.liveness) or stopped renewing its
    lease; each counts as a lost attempt and a recovery of its job. Return how many."""
    now = now or timezone.now()
    running = list(
        Batch.objects.filter(status=Batch.Status.RUNNING).values_list(
            "pk", "job_id", "claim_token", "lease_expires_at", *liveness.HOLDER_FIELDS
        )
    )
    dead = liveness.lost_claims(((row[0], *row[4:]) for row in running), now)
    recovered = 0
    for pk, job_id, token, lease_expires_at, *_ in running:
        if lease_expires_at is not None and lease_expires_at >= now and pk not in dead:
            continue
        why = dead.get(pk, "its lease ran out")
        with transaction.atomic():
            # Only the claim seen above: a batch that finished (or was claimed
            # again) meanwhile is left alone, and counted once.
            if not Batch.objects.filter(
                pk=pk, status=Batch.Status.RUNNING, claim_token=token
            ).update(
                **handed_back(
                    now, lost_attempts=F("lost_attempts") + 1, last_error=f"attempt lost: {why}"
                )
            ):
                continue
            counters, _ = JobCounters.objects.get_or_create(job_id=job_id)
            JobCounters.objects.filter(pk=counters.pk).update(
                batches_recovered=F("batches_recovered") + 1
            )
        recovered += 1
        log.warning("batch %s handed out again: %s", pk, why)
    return recovered
