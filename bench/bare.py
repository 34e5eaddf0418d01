"""The reference for figure 2: the same processor in a bare Celery task, no Velo bookkeeping.

Its own Celery app on the benchmark's Redis db, its own queue. The task runs
demo.trades over a batch's records, catching each failure as Velo would, and
adds the batch's size to a Redis counter the benchmark polls. It needs no
Django settings: the processor module only reads them when called upon.
"""

import logging
import os

import redis
from celery import Celery

from demo.processors import trades
from dlq.processors import ProcessorContext

QUEUE = "velo-bench-bare"
# Not the current app: importing this module (the bench, its tests) must leave Velo's own
# app the one `current_app` and shared tasks mean.
app = Celery("velo-bench-bare", broker=os.environ.get("CELERY_BROKER_URL"), set_as_current=False)
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_redis = None


def counter():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(app.conf.broker_url)
    return _redis


@app.task(name="bench.bare_process")
def process(records, done_key):
    ctx = ProcessorContext(
        job=None, config={}, batch_id=0, attempt=1, logger=logging.getLogger("bench.bare")
    )
    failed = 0
    for record in records:
        try:
            trades(record, ctx)
        except Exception:
            failed += 1
    counter().incrby(done_key, len(records))
    return failed
