"""What a job's failure strategy does with an attempt's failures: the README's table, in code.

`plan` is pure (no database, no clock), so the table is tested row by row:

| strategy             | a failed record                                    | the batch        |
| -------------------- | -------------------------------------------------- | ---------------- |
| `log_and_continue`   | into the DLQ when `dlq_enabled`                    | `partial`        |
| `send_to_dlq`        | always into the DLQ                                | `partial`        |
| `fail_batch`         | the whole batch failed: retried; when retries run  | `retrying`, then |
|                      | out every record goes to the DLQ                   | `failed`         |
| `retry_with_backoff` | only the failed records are retried; what still    | `retrying`, then |
|                      | fails after `max_retries` goes to the DLQ          | `partial`        |

An attempt with no failure succeeds whatever the strategy. A batch that keeps
losing its attempts (`give_up`) sends everything that failed to the DLQ and fails.
"""

from dataclasses import dataclass
from enum import StrEnum

from ..models import Batch, FailureStrategy


class DeadLetters(StrEnum):
    NONE = "none"
    FAILED = "failed"  # the records that failed
    WHOLE_BATCH = "whole_batch"  # every record of the batch


class Retry(StrEnum):
    NO = "no"
    BATCH = "batch"  # the whole batch again
    FAILED_ONLY = "failed_only"  # only the records that failed


@dataclass(frozen=True)
class Plan:
    """What follows an attempt: which records go to the DLQ, what is retried, the batch's status.

    `whole_batch_failed`: every record of the batch counts as failed this
    attempt (fail_batch stops at the first failure and rolls back the rest).
    """

    dead_letters: DeadLetters = DeadLetters.NONE
    retry: Retry = Retry.NO
    status: Batch.Status = Batch.Status.SUCCEEDED
    whole_batch_failed: bool = False


def plan(strategy, *, failed, retries_left, dlq_enabled, give_up=False):
    """The plan for an attempt in which `failed` records failed.

    `retries_left`: this attempt is within the job's max_retries. `give_up`:
    the batch keeps losing its attempts; it is dead-lettered instead of retried.
    """
    if not failed:
        return Plan()
    retries_left = retries_left and not give_up
    done = Batch.Status.FAILED if give_up else Batch.Status.PARTIAL
    if strategy in (FailureStrategy.LOG_AND_CONTINUE, FailureStrategy.SEND_TO_DLQ):
        keep = strategy == FailureStrategy.SEND_TO_DLQ or dlq_enabled or give_up
        return Plan(DeadLetters.FAILED if keep else DeadLetters.NONE, Retry.NO, done)
    if strategy == FailureStrategy.FAIL_BATCH:
        if retries_left:
            return Plan(DeadLetters.NONE, Retry.BATCH, Batch.Status.RETRYING, True)
        return Plan(DeadLetters.WHOLE_BATCH, Retry.NO, Batch.Status.FAILED, True)
    # retry_with_backoff (and a value the choices do not know: retrying is the safe reading)
    if retries_left:
        return Plan(DeadLetters.NONE, Retry.FAILED_ONLY, Batch.Status.RETRYING)
    return Plan(DeadLetters.FAILED, Retry.NO, done)
