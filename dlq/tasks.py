"""Celery tasks: thin wrappers that load by id and call the plain functions."""

from celery import shared_task

from . import dispatch, engine


@shared_task(name="dlq.process_batch")
def process_batch_task(batch_id):
    return engine.process_batch(batch_id)


@shared_task(name="dlq.dispatch_due_batches")
def dispatch_due_batches():
    return dispatch.dispatch_due()
