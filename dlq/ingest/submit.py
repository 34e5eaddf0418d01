"""Submitting a batch: checked, persisted, then queued (a broker outage loses nothing)."""

import hashlib
import json

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..dispatch import send_on_commit
from ..models import Batch, JobCounters
from ..pause import holds_batches
from . import records as record_checks


class IdempotencyKeyReused(record_checks.InvalidRecords):
    """An Idempotency-Key already used for this job with different records."""


def submit_batch(job, records, *, idempotency_key=None, submitted_by=""):
    """Store a batch for `job` and queue it; return (batch, created).

    The same idempotency key for the same job returns the batch it made first,
    if the records are the same (IdempotencyKeyReused, a 422, if they are not).
    Raises records.InvalidRecords, storing nothing, for records Velo will not take.
    """
    digest = ""
    if idempotency_key:
        record_checks.validate_idempotency_key(
            idempotency_key, Batch._meta.get_field("idempotency_key").max_length
        )
        digest = records_hash(records)
        existing = _keyed(job, idempotency_key).first()
        if existing:
            return _replayed(existing, digest)
    stored = record_checks.validate(records)
    now = timezone.now()
    # A paused job's batch is kept unsent: its resume sends it, in its turn (dlq.pause).
    sent_now = not holds_batches(job)
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                job=job,
                records=stored or records,
                record_count=len(records),
                idempotency_key=idempotency_key or None,
                records_hash=digest,
                submitted_by=submitted_by,
                next_attempt_at=now,
                # Stamped before it is published, in the same statement.
                dispatched_at=now if sent_now else None,
            )
            if sent_now:
                send_on_commit(batch.pk, stamp=now)
        batch.records = records  # not the stored text: callers read the records
    except IntegrityError:
        if not idempotency_key:
            raise
        # Another request with the same key won the race: answer with its batch.
        return _replayed(_keyed(job, idempotency_key).get(), digest)
    return batch, True


def _keyed(job, key):
    """The batch of `key`, without its records (megabytes, and not needed to answer)."""
    return Batch.objects.filter(job=job, idempotency_key=key).only(
        "pk", "job_id", "record_count", "records_hash"
    )


def records_hash(records):
    """sha256 of `records` as canonical JSON (keys sorted, no spaces): the same for the same
    records however they were sent (a JSON array, {"records": [...]}, NDJSON, keys in any
    order), different as soon as one value differs."""
    text = json.dumps(records, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _replayed(batch, digest):
    """An earlier batch answers again for its Idempotency-Key: counted for
    velo_idempotent_replays_total. The key with other records is refused (422): answering
    with the earlier batch would tell the client its new records were taken.

    A batch stored before records were hashed (no records_hash) answers any replay.
    """
    if batch.records_hash and batch.records_hash != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for other records: send them with a new key",
            status=422,
            detail={"batch_id": batch.pk},
        )
    counters, _ = JobCounters.objects.get_or_create(job_id=batch.job_id)
    JobCounters.objects.filter(pk=counters.pk).update(
        idempotent_replays=F("idempotent_replays") + 1
    )
    return batch, False
