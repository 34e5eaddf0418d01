"""The failure strategies' plan, row by row against the README's table (no database)."""

import pytest

from dlq.engine.strategies import DeadLetters, Plan, Retry, plan
from dlq.models import Batch, FailureStrategy

S = FailureStrategy
B = Batch.Status


@pytest.mark.parametrize("strategy", list(S))
def test_an_attempt_without_failures_succeeds_whatever_the_strategy(strategy):
    assert plan(strategy, failed=0, retries_left=True, dlq_enabled=True) == Plan(
        DeadLetters.NONE, Retry.NO, B.SUCCEEDED, whole_batch_failed=False
    )


@pytest.mark.parametrize(
    ("strategy", "retries_left", "dlq_enabled", "expected"),
    [
        # log_and_continue: into the DLQ when dlq_enabled; partial; never retried.
        (S.LOG_AND_CONTINUE, True, True, Plan(DeadLetters.FAILED, Retry.NO, B.PARTIAL)),
        (S.LOG_AND_CONTINUE, True, False, Plan(DeadLetters.NONE, Retry.NO, B.PARTIAL)),
        (S.LOG_AND_CONTINUE, False, False, Plan(DeadLetters.NONE, Retry.NO, B.PARTIAL)),
        # send_to_dlq: always into the DLQ; partial; never retried.
        (S.SEND_TO_DLQ, True, True, Plan(DeadLetters.FAILED, Retry.NO, B.PARTIAL)),
        (S.SEND_TO_DLQ, True, False, Plan(DeadLetters.FAILED, Retry.NO, B.PARTIAL)),
        # fail_batch: the whole batch failed; retried while retries are left, then
        # every record goes to the DLQ and the batch fails.
        (S.FAIL_BATCH, True, True, Plan(DeadLetters.NONE, Retry.BATCH, B.RETRYING, True)),
        (S.FAIL_BATCH, False, True, Plan(DeadLetters.WHOLE_BATCH, Retry.NO, B.FAILED, True)),
        (S.FAIL_BATCH, False, False, Plan(DeadLetters.WHOLE_BATCH, Retry.NO, B.FAILED, True)),
        # retry_with_backoff: only the failed records again; then they go to the DLQ, partial.
        (S.RETRY_WITH_BACKOFF, True, True, Plan(DeadLetters.NONE, Retry.FAILED_ONLY, B.RETRYING)),
        (S.RETRY_WITH_BACKOFF, False, True, Plan(DeadLetters.FAILED, Retry.NO, B.PARTIAL)),
        (S.RETRY_WITH_BACKOFF, False, False, Plan(DeadLetters.FAILED, Retry.NO, B.PARTIAL)),
    ],
)
def test_the_plan_for_failed_records_is_the_readme_table(
    strategy, retries_left, dlq_enabled, expected
):
    assert plan(strategy, failed=2, retries_left=retries_left, dlq_enabled=dlq_enabled) == expected


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (S.LOG_AND_CONTINUE, Plan(DeadLetters.FAILED, Retry.NO, B.FAILED)),
        (S.SEND_TO_DLQ, Plan(DeadLetters.FAILED, Retry.NO, B.FAILED)),
        (S.FAIL_BATCH, Plan(DeadLetters.WHOLE_BATCH, Retry.NO, B.FAILED, True)),
        (S.RETRY_WITH_BACKOFF, Plan(DeadLetters.FAILED, Retry.NO, B.FAILED)),
    ],
)
def test_a_batch_given_up_on_goes_to_the_dlq_and_fails_even_with_retries_and_no_dlq(
    strategy, expected
):
    assert plan(strategy, failed=3, retries_left=True, dlq_enabled=False, give_up=True) == expected
