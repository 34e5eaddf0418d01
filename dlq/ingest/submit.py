"""Submitting a batch: checked, persisted, then queued (a broker outage loses nothing)."""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..dispatch import send_on_commit
from ..models import Batch, JobCounters
from . import records as record_checks


def submit_batch(job, records, *, idempotency_key=None, submitted_by=""):
    """Store a batch for `job` and queue it; return (batch, created).

    The same idempotency key for the same job returns the batch it made first.
    Raises records.InvalidRecords, storing nothing, for records Velo will not take.
    """
    if idempotency_key:
        record_checks.validate_idempotency_key(
            idempotency_key, Batch._meta.get_field("idempotency_key").max_length
        )
        existing = Batch.objects.filter(job=job, idempotency_key=idempotency_key).first()
        if existing:
            return _replayed(existing)
    record_checks.validate(records)
    now = timezone.now()
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                job=job,
                records=records,
                record_count=len(records),
                idempotency_key=idempotency_key or None,
                submitted_by=submitted_by,
                next_attempt_at=now,
                dispatched_at=now,  # stamped before it is published, in the same statement
            )
            send_on_commit(batch.pk, stamp=now)
    except IntegrityError:
        if not idempotency_key:
            raise
        # Another request with the same key won the race: answer with its batch.
        return _replayed(Batch.objects.get(job=job, idempotency_key=idempotency_key))
    return batch, True


def _replayed(batch):
    """An earlier batch answers again for its Idempotency-Key: counted for
    velo_idempotent_replays_total."""
    counters, _ = JobCounters.objects.get_or_create(job_id=batch.job_id)
    JobCounters.objects.filter(pk=counters.pk).update(
        idempotent_replays=F("idempotent_replays") + 1
    )
    return batch, False
