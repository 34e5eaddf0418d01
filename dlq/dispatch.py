"""Sending work to the workers: after commit, by task name, never waiting on a dead broker.

The database, not the broker, says what is due (see dlq.sweep, which beat runs
every second): a send that fails loses nothing, because the work waits in its
row until the next tick sends it. So a request never retries a publish; after
a failed one it stops trying the broker for a while.
"""

import logging
import time

from celery import current_app
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerError

from .models import Batch, RegroupRun, RequeueRun

log = logging.getLogger(__name__)

# The Celery tasks that work each kind of row, by name: dlq.tasks registers them
# under these names, and this module publishes by name, never importing the tasks.
PROCESS_BATCH = "dlq.process_batch"
EXECUTE_REQUEUE_RUN = "dlq.execute_requeue_run"
EXECUTE_REGROUP_RUN = "dlq.execute_regroup_run"
TASK_NAMES = {
    Batch: PROCESS_BATCH,
    RequeueRun: EXECUTE_REQUEUE_RUN,
    RegroupRun: EXECUTE_REGROUP_RUN,
}
# After a failed send, requests stop trying the broker for this long: a dead
# Redis takes seconds to refuse (redis-py retries the connect), and the
# dispatcher sends the waiting work once it is back.
BROKER_BACKOFF_SECONDS = 15.0


class BrokerBackoff:
    """Remembers a failed send for `seconds`, so requests meanwhile leave their work to beat."""

    def __init__(self, seconds):
        self.seconds = seconds
        self._until = 0.0

    def tripped(self):
        return time.monotonic() < self._until

    def trip(self):
        self._until = time.monotonic() + self.seconds


broker_backoff = BrokerBackoff(BROKER_BACKOFF_SECONDS)


def publish(task_name, pk):
    """Send one task message by name; raises if the broker cannot be reached.

    No publish retries: a caller waiting on an HTTP request must not hang on a
    dead broker; the dispatcher will try again.
    """
    current_app.send_task(task_name, args=(pk,), retry=False)


def waiting_messages(queue=None):
    """How many task messages wait in Velo's queue at the broker; None when it cannot say.

    A queue the broker does not know (Redis drops an empty list, and a restarted
    Redis has none) holds nothing.
    """
    queue = queue or current_app.conf.task_default_queue
    try:
        with current_app.pool.acquire(block=True, timeout=2) as conn:
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                return 0
    except Exception as exc:  # the broker is down or slow: the cautious window applies
        log.info("could not count the messages waiting at the broker: %s", exc)
        return None


def send_rows(model, ids, stamp=None):
    """Publish one task per row; return the ids sent. Raises if the broker cannot be reached.

    `stamp` is the dispatched_at the rows were already given (a new batch
    gets it in its INSERT); otherwise they are stamped here.
    """
    if not ids:
        return []
    # Stamped before publishing: a fast worker that finishes the attempt and
    # schedules a retry clears the stamp after this, never before it (which
    # would hide the retry from the dispatcher until the stamp went stale).
    if stamp is None:
        stamp = timezone.now()
        model.objects.filter(pk__in=ids).update(dispatched_at=stamp)
    sent = []
    try:
        for pk in ids:
            publish(TASK_NAMES[model], pk)
            sent.append(pk)
    finally:
        unsent = [pk for pk in ids if pk not in set(sent)]
        if unsent:
            model.objects.filter(pk__in=unsent, dispatched_at=stamp).update(dispatched_at=None)
    return sent


def send(batch_ids):
    return send_rows(Batch, batch_ids)


def _send_on_commit(model, pk, stamp=None):
    def try_send():
        if broker_backoff.tripped():
            log.info(
                "broker recently unreachable; %s %s waits for the dispatcher",
                model._meta.verbose_name,
                pk,
            )
            if stamp is not None:  # not on its way after all: the next tick sends it
                model.objects.filter(pk=pk, dispatched_at=stamp).update(dispatched_at=None)
            return
        try:
            send_rows(model, [pk], stamp)
        except (BrokerError, OSError) as exc:
            broker_backoff.trip()
            log.warning(
                "broker unreachable (%s); %s %s waits for the dispatcher",
                exc,
                model._meta.verbose_name,
                pk,
            )

    transaction.on_commit(try_send)


def send_on_commit(batch_id, stamp=None):
    """After the batch is committed, try to send it; if the broker is down, beat will.

    `stamp`: the batch was stored with this dispatched_at already.
    """
    _send_on_commit(Batch, batch_id, stamp)


def send_run_on_commit(run_id):
    _send_on_commit(RequeueRun, run_id)


def send_regroup_run_on_commit(run_id):
    _send_on_commit(RegroupRun, run_id)
