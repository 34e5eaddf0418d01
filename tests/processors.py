"""Processors that exist only for the test suite (loaded through VELO_PROCESSORS)."""

import contextlib
import re
import socket
import time

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


@processor("test.fails_chained", transactional=False)
def fails_chained(record, ctx):
    """Fails with an error raised while handling another: a chained traceback."""
    try:
        record["missing"]
    except KeyError as exc:
        raise ValueError(f"record {record['n']} has no 'missing'") from exc


@processor("test.slow_until_fixed", transactional=False)
def slow_until_fixed(record, ctx):
    """Takes config["sleep"] seconds a record; fails records marked `fail` until the job's
    config says `fixed`: batches long enough to be cut mid-work, and requeues that resolve."""
    import time

    time.sleep(ctx.config.get("sleep", 0))
    if record.get("fail") and not ctx.config.get("fixed"):
        raise ValueError("record marked to fail")


# Python's `re` backtracks on this for hours, in one C call that holds the GIL.
CATASTROPHIC = (r"^(a+)+$", "a" * 40 + "!")


@processor("test.hangs", transactional=False)
def hangs(record, ctx):
    """Hangs the way the record says: `sleep` seconds, a catastrophic `regex`, a `socket`
    read from 127.0.0.1:port that never answers, or a `stubborn` regex that swallows the
    soft limit (only killing its process stops it). Anything else succeeds."""
    how = record.get("hang")
    if how == "sleep":
        time.sleep(record.get("seconds", 3600))
    elif how == "regex":
        re.fullmatch(*CATASTROPHIC)
    elif how == "socket":
        with socket.create_connection(("127.0.0.1", record["port"])) as conn:
            conn.recv(1)
    elif how == "stubborn":
        while True:  # the point: a processor that will not stop
            with contextlib.suppress(BaseException):
                re.fullmatch(*CATASTROPHIC)


@processor("test.remembers_replay", transactional=False)
def remembers_replay(record, ctx):
    """Writes down (a Group's name, committed at once) what ctx said of the replay, then
    fails records marked `fail` until the job's config says `fixed` or the payload says so."""
    seen = ctx.requeue
    Group.objects.create(
        name="|".join(
            map(
                str,
                (
                    ctx.idempotency_key,
                    ctx.attempt,
                    seen and seen.run_id,
                    seen and seen.attempt,
                    seen and seen.payload_edited,
                ),
            )
        )
    )
    if record.get("fail") and not ctx.config.get("fixed"):
        raise ValueError("record marked to fail")
