"""Storing dead letters in the DLQ, within the job's capacity.

The caller holds the job's counters row locked (SELECT … FOR UPDATE on
PostgreSQL; SQLite's IMMEDIATE transaction holds the write lock), so the room
it reads cannot be taken by another writer before this insert commits.
"""

from collections import Counter
from dataclasses import asdict, dataclass

from common import bulk

from .. import backlog, tracebacks
from ..health import room_left
from ..models import DLQEntry

# A record dead-lettered with its failing batch (fail_batch) carries the failing
# record's message after this, and sits in that record's group.
BATCH_FAILED = "Batch failed: "


def batch_failed_message(cause_message):
    return f"{BATCH_FAILED}{cause_message}"


def grouping_message(message):
    """The message an entry was grouped by: its cause's, when it went with a failed batch."""
    return message.removeprefix(BATCH_FAILED)


@dataclass(frozen=True)
class DeadLetter:
    """A failed record on its way into the DLQ."""

    index: int
    error_type: str
    message: str
    traceback: str
    group_id: int
    attempts: int
    # The message's length before it was cut (VELO_MAX_ERROR_MESSAGE_CHARS); None: len(message).
    message_length: int | None = None

    @property
    def original_length(self):
        return len(self.message) if self.message_length is None else self.message_length

    def as_json(self):
        return asdict(self)

    @classmethod
    def from_json(cls, data):
        # Letters held before occurrences were counted name theirs: nothing links them now.
        return cls(**{k: v for k, v in data.items() if k != "occurrence_id"})


@dataclass(frozen=True)
class StoredEntry:
    index: int
    pk: int


def store(job, batch, letters, counters, *, now, context):
    """Insert as many letters as there is room for; return (stored entries, letters left over).

    An entry is its own original attempt (dlq.history): no attempt row is written for it.
    """
    room = room_left(job, counters)
    fits, overflow = (letters, []) if room is None else (letters[:room], letters[room:])
    place = context.as_dict()
    job_id, batch_id, records = job.pk, batch.pk, batch.records
    traces = tracebacks.store_heads([letter.traceback for letter in fits])
    ids = bulk.insert_rows(
        DLQEntry,
        [
            {
                "job_id": job_id,
                "batch_id": batch_id,
                "index": letter.index,
                "payload": records[letter.index],
                "error_message": letter.message,
                "error_message_length": letter.original_length,
                "error_type": letter.error_type,
                "traceback": trace.rest,
                "traceback_head_id": trace.head_id,
                "error_group_id": letter.group_id,
                "status": DLQEntry.Status.PENDING,
                "attempts": letter.attempts,
                "created_at": now,
                "last_attempt_at": now,
                **place,
            }
            for letter, trace in zip(fits, traces, strict=True)
        ],
    )
    backlog.add(Counter(letter.group_id for letter in fits))
    entries = [StoredEntry(letter.index, pk) for letter, pk in zip(fits, ids, strict=True)]
    return entries, overflow
