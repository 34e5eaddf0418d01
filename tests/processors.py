"""Processors that exist only for the test suite (loaded through VELO_PROCESSORS)."""

from django.contrib.auth.models import Group

from dlq.models import RequeueRun
from dlq.processors import processor


@processor("test.writes")
def writes(record, ctx):
    """Writes a row, then fails if the record says so: for rollback tests."""
    Group.objects.create(name=record["name"])
    if record.get("fail"):
        raise ValueError(f"record {record['name']} refused")


@processor("test.fails_on", transactional=False)
def fails_on(record, ctx):
    """Fails records marked `fail`, with a message carrying a variable number."""
    if record.get("fail"):
        raise ValueError(f"Timeout after {record.get('ms', 3000)} ms")


@processor("test.cancels_run", transactional=False)
def cancels_run(record, ctx):
    """Asks every running requeue run to stop when the record says so: for cancel tests."""
    if record.get("cancel"):
        RequeueRun.objects.filter(status=RequeueRun.Status.RUNNING).update(cancel_requested=True)


@processor("test.fails_with", transactional=False)
def fails_with(record, ctx):
    """Fails with the record's own message (and error type, when it names one)."""
    if "message" in record:
        error = type(record.get("type", "ValueError"), (Exception,), {})
        raise error(record["message"])


@processor("test.slow_until_fixed", transactional=False)
def slow_until_fixed(record, ctx):
    """Takes config["sleep"] seconds a record; fails records marked `fail` until the job's
    config says `fixed`: batches long enough to be cut mid-work, and requeues that resolve."""
    import time

    time.sleep(ctx.config.get("sleep", 0))
    if record.get("fail") and not ctx.config.get("fixed"):
        raise ValueError("record marked to fail")
