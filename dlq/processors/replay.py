"""What a processor knows of a replay: whether it runs a requeue, and a key per DLQ entry.

A processor with side effects outside the database (an e-mail sent, a card
charged) cannot roll them back when its record fails later in the attempt;
requeued, it would do them again. `idempotency_key` is the same for a record
in its batch and for the DLQ entry it became, on every requeue of it, so the
processor can remember what it did under that key (or hand the key to an API
that takes one) and skip it the next time.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Requeue:
    """A requeue the processor is running (ctx.requeue; None in batch processing)."""

    # Every requeue runs as a requeue run (one entry's too: dlq.triage), so it has an id.
    run_id: int
    # This try of the entry (ctx.attempt too): one more than its attempts so far, the batch's
    # included: 2 for a record's first requeue after one failure, 5 after four tries.
    attempt: int
    # The payload is not the one that failed: edited by hand, or by a fix (this run's or
    # an earlier one's).
    payload_edited: bool


def idempotency_key(job_id, batch_id, index):
    """`job id:batch id:index`: ids, not names, so a job renamed keeps its keys."""
    return f"{job_id}:{batch_id}:{index}"
