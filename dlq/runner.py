"""Running a job's processor over records, catching each record's failure."""

import logging
import time
import traceback
from dataclasses import dataclass

from django.db import transaction

from . import processors

log = logging.getLogger("velo.records")

# How often a long attempt renews its claim's lease, as a share of the lease.
HEARTBEAT_SHARE = 1 / 3


@dataclass(frozen=True)
class RecordFailure:
    index: int
    error_type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class RunResult:
    attempted: int
    failures: list


def _failure(index, exc):
    return RecordFailure(
        index=index,
        error_type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
    )


def run_records(
    job,
    batch,
    indexes,
    *,
    attempt,
    stop_on_first=False,
    savepoints=False,
    heartbeat=None,
    heartbeat_every=None,
):
    """Run the job's processor on the records at `indexes`; return what failed.

    With `savepoints`, each record runs in its own savepoint, so a failing
    record's database writes roll back while the others' stay.
    """
    try:
        processor = processors.get(job.processor)
    except LookupError as exc:
        failures = [_failure(i, exc) for i in indexes]
        return RunResult(len(failures), failures[:1] if stop_on_first else failures)
    ctx = processors.ProcessorContext(
        job=job,
        config=job.config or {},
        batch_id=batch.pk,
        attempt=attempt,
        logger=logging.getLogger(f"velo.job.{job.name}"),
    )
    failures = []
    attempted = 0
    last_beat = time.monotonic()
    for index in indexes:
        attempted += 1
        record = batch.records[index]
        try:
            if savepoints:
                with transaction.atomic():
                    processor.func(record, ctx)
            else:
                processor.func(record, ctx)
        except Exception as exc:  # a processor fails a record by raising anything
            failure = _failure(index, exc)
            log.warning(
                "job %s: record %d of batch %d failed (attempt %d): %s: %s",
                job.name,
                index,
                batch.pk,
                attempt,
                failure.error_type,
                failure.message,
            )
            failures.append(failure)
            if stop_on_first:
                break
        if heartbeat and time.monotonic() - last_beat > heartbeat_every:
            heartbeat()
            last_beat = time.monotonic()
    return RunResult(attempted, failures)
