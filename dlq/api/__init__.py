"""What scripts see: the HTTP API under /api/v1/, JSON in and JSON out, errors included.

One module per resource (batches, entries, requeue_runs, error_groups), each
a few thin views over a service; auth, body, params, shapes and responses
are what they share."""
