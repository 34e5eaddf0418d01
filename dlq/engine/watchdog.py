"""The hard time limit: stop a pool process whose record runs past its limit plus a grace.

Runs in the Celery worker's parent process (velo_site.watchdog starts it), which
runs no records, so a record holding the GIL in its pool process cannot starve it.
Each pool process writes the record it runs into its slot (dlq.processors.limits);
for a record past `record_timeout + VELO_RECORD_TIMEOUT_GRACE_SECONDS` the watchdog
first marks the record in its batch row and hands the batch back (only while the
stuck attempt's claim still holds it), then kills the process. The batch's next
attempt fails that record with RecordTimeout without running it, and processes the
rest; the killed attempt committed nothing, so nothing is counted twice.
"""

import logging
import os
import signal
import time
from pathlib import Path

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from common import workers

from .. import requeue
from ..models import Batch
from ..processors.limits import IDLE, read_slot
from .lease import handed_back

log = logging.getLogger(__name__)


def overdue(directory, grace, now=None):
    """(pid, batch_id, token, index, timeout) of each pool process past its record's hard limit.

    Slots of processes that are gone are removed.
    """
    now = time.monotonic() if now is None else now
    found = []
    for path in Path(directory).iterdir():
        if not path.name.isdigit():
            continue
        pid = int(path.name)
        if not workers.running(pid):
            path.unlink(missing_ok=True)
            continue
        slot = read_slot(path)
        if slot is None:
            continue
        batch_id, token, index, started, timeout = slot
        # A record's slot is always (IDLE, 0) between records: a read torn by a write
        # shows a start of 0, never an old start with a new index.
        if index != IDLE and started > 0 and timeout and now > started + timeout + grace:
            found.append((pid, batch_id, token, index, timeout))
    return found


def mark_timed_out(batch_id, token, index, seconds):
    """Record that `index` timed out and hand the batch back at once; False if the claim
    is no longer the stuck attempt's (it finished, or the batch went to another worker)."""
    with transaction.atomic():
        batch = (
            Batch.objects.select_for_update()
            .only("timed_out")
            .filter(pk=batch_id, claim_token=token, status=Batch.Status.RUNNING)
            .first()
        )
        if batch is None:
            return False
        timed_out = {**(batch.timed_out or {}), str(index): seconds}
        # Not a lost attempt: the next one knows what happened and will not run it again.
        Batch.objects.filter(pk=batch_id, claim_token=token).update(
            **handed_back(
                timezone.now(),
                timed_out=timed_out,
                last_error=f"RecordTimeout: record {index} ran past {seconds:g} s; "
                "its process killed",
            )
        )
    return True


def enforce(directory, grace):
    """One look at every pool process; kill those past their hard limit. Returns the pids killed."""
    killed = []
    for pid, batch_id, token, index, timeout in overdue(directory, grace):
        # A requeue's slot names its DLQ entry as a negative id (dlq.requeue.entries._run).
        what = f"entry {-batch_id}" if batch_id < 0 else f"record {index} of batch {batch_id}"
        try:
            if batch_id < 0:
                marked = requeue.mark_timed_out(-batch_id, token, timeout)
            else:
                marked = mark_timed_out(batch_id, token, index, timeout)
        except DatabaseError as exc:
            # Kill it all the same: never hold a worker forever. Its lease runs out and
            # the batch (or run) is handed out again.
            log.error("watchdog: could not mark %s: %s", what, exc)
            connection.close()  # broken: the next look opens a new one
            marked = False
        log.error(
            "watchdog: %s ran past its record_timeout (%gs) + %gs; killing pool process %d%s",
            what,
            timeout,
            grace,
            pid,
            "" if marked else " (not marked)",
        )
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        Path(directory, str(pid)).unlink(missing_ok=True)
        killed.append(pid)
    return killed
