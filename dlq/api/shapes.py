"""What the API answers with: times as ISO 8601 UTC, and the JSON shape of each object."""

from datetime import UTC


def iso_utc(moment):
    """`2024-05-01T12:00:00.123456Z`, or None."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dlq_entry(entry, job_name, redactor):
    """An entry of GET /api/v1/dlq; `job_name` is passed in so a page needs no join, and the
    job's `redactor` (dlq.redaction) that masks the payload's sensitive fields."""
    return {
        "id": entry.pk,
        "job": job_name,
        "batch": entry.batch_id,
        "index": entry.index,
        "status": entry.status,
        "attempts": entry.attempts,
        "error_message": entry.error_message,
        "error_type": entry.error_type,
        "error_group": entry.error_group_id,
        "payload": redactor.mask(entry.payload),
        "node_id": entry.node_id,
        "created_at": iso_utc(entry.created_at),
        "last_attempt_at": iso_utc(entry.last_attempt_at),
        "resolved_at": iso_utc(entry.resolved_at),
    }


def requeue_run(run):
    """GET /api/v1/requeue-runs/<id>: the contract's keys, then a few that help a script wait."""
    return {
        "id": run.pk,
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "dry_run": run.dry_run,
        "skipped": run.skipped,
        "not_fixed": run.not_fixed,
        "fix": run.fix,
        "stop_reason": run.stop_reason,
        "rate_limit": run.rate_limit,
        # A paced run waiting (queued) for its next chunk: when it is due; else null.
        "next_attempt_at": iso_utc(run.next_attempt_at),
        "created_at": iso_utc(run.created_at),
        "finished_at": iso_utc(run.finished_at),
    }


def error_group(group):
    """A group of GET /api/v1/errors; its message is the template, the same for every member."""
    return {
        "id": group.pk,
        "job": group.job_name,
        "fingerprint": group.fingerprint,
        "message": group.template,
        "error_type": group.error_type,
        "count": group.count,
        "first_seen": iso_utc(group.first_seen),
        "last_seen": iso_utc(group.last_seen),
        "status": group.status,
    }


def top_error(group):
    """An item of /api/v1/errors/stats' `top`."""
    return {
        "job": group.job_name,
        "message": group.template,
        "count": group.count,
        "last_seen": iso_utc(group.last_seen),
    }
