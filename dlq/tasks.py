"""Celery tasks: thin wrappers that load by id and call the plain functions."""

from celery import shared_task

from . import dispatch, engine, requeue


@shared_task(name="dlq.process_batch")
def process_batch_task(batch_id):
    return engine.process_batch(batch_id)


@shared_task(name="dlq.execute_requeue_run")
def execute_requeue_run(run_id):
    run = requeue.execute_run(run_id)
    return run.status if run else None


@shared_task(name="dlq.dispatch_due_batches")
def dispatch_due_batches():
    return dispatch.dispatch_due()


@shared_task(name="dlq.purge_expired")
def purge_expired():
    from . import retention  # imported here so this task's lines stay together at the end

    return retention.purge_expired()
