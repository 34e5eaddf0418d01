"""Jobs and DLQ entries made the way the product makes them: a job whose schema its records
fail, entries stored by the real engine, and the fix an operator ships."""

from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import DLQEntry, Job, JobCounters

SCHEMA = {"type": "object", "required": ["symbol"], "properties": {"symbol": {"type": "string"}}}


def schema_job(name="orders", **fields):
    return Job.objects.create(
        name=name,
        processor="json_schema",
        config={"schema": SCHEMA},
        failure_strategy="send_to_dlq",
        **fields,
    )


def fail(job, count):
    """`count` records of `job` that fail its schema, stored as DLQ entries by the engine."""
    batch, _ = submit_batch(job, [{"n": i} for i in range(count)])
    process_batch(batch.pk)
    return list(DLQEntry.objects.filter(batch=batch).order_by("pk"))


def relax(job):
    """The fix an operator ships: the schema no longer requires the field."""
    job.config = {"schema": {"type": "object"}}
    job.save()


def failing_entries(count, name="orders"):
    """A schema job with `count` of its records in the DLQ; return the job."""
    job = schema_job(name)
    fail(job, count)
    return job


def counters(job):
    return JobCounters.objects.get(job=job)


def captured_tracebacks(job, records):
    """{index: traceback} of the records `job` fails, as the runner captures them: the text
    stored whole before tracebacks were kept per failure site (and Python's own, as
    tests/dlq/processors/test_runner.py checks)."""
    from dlq.processors.runner import run_records

    result = run_records(job, records, list(range(len(records))), batch_id=0, attempt=1)
    return {failure.index: failure.traceback for failure in result.failures}


AUTH_USERS = ["root", "git", "ftp", "oracle"]


def auth_job(name="auth"):
    """A job whose records fail with their own message ({"message": ...})."""
    return Job.objects.create(
        name=name, processor="test.fails_with", failure_strategy="send_to_dlq"
    )


def fail_with(job, messages):
    """Each message a failed record of `job`, stored by the engine."""
    batch, _ = submit_batch(job, [{"message": m} for m in messages])
    process_batch(batch.pk)


def attacks(job, rounds=3):
    """Failed logins of four users (four groups until a rule makes the user a variable), and one
    other error."""
    fail_with(
        job,
        [
            f"Failed password for {u} from 10.0.0.{i} port 22"
            for i, u in enumerate(AUTH_USERS * rounds)
        ],
    )
    fail_with(job, ["Connection closed by 10.0.0.9"])


def assert_backlogs_exact():
    """Every error group's stored DLQ backlog equals its open entries, counted."""
    from collections import Counter

    from dlq.backlog import OPEN
    from errors.models import ErrorGroup

    held = Counter(
        DLQEntry.objects.filter(status__in=OPEN).values_list("error_group_id", flat=True)
    )
    stored = dict(ErrorGroup.objects.values_list("pk", "dlq_pending"))
    assert stored == {pk: held[pk] for pk in stored}
    assert set(held) <= set(stored)
