"""Celery tasks: thin wrappers that load by id and call the plain functions.

dlq.dispatch publishes them by name, and the beat schedule names them too.
"""

from celery import shared_task

from . import dispatch, engine, regroup, requeue, retention, sweep


@shared_task(name=dispatch.PROCESS_BATCH)
def process_batch_task(batch_id):
    return engine.process_batch(batch_id)


@shared_task(name=dispatch.EXECUTE_REQUEUE_RUN)
def execute_requeue_run(run_id):
    run = requeue.execute_run(run_id)
    return run.status if run else None


@shared_task(name=dispatch.EXECUTE_REGROUP_RUN)
def execute_regroup_run(run_id):
    run = regroup.execute_run(run_id)
    return run.status if run else None


@shared_task(name="dlq.dispatch_due_batches")
def dispatch_due_batches():
    return sweep.tick()


@shared_task(name="dlq.purge_expired")
def purge_expired():
    return retention.purge_expired()
