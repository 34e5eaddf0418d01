"""What each job attempted and failed minute by minute: "is it failing now?", not since when.

The attempt that counts records adds them to its minute's row (one INSERT ...
ON CONFLICT per attempt, not per record); the last hour's rate reads at most
60 rows per job through the (job, minute) key. Retention drops rows older
than KEEP.
"""

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from common import bulk

from .models import JobActivity

KEEP = timedelta(days=2)
WINDOW = timedelta(hours=1)


def record(job_id, processed, failed, at):
    """Count an attempt's records into the minute `at` falls in."""
    if not processed:
        return
    bulk.merge_rows(
        JobActivity,
        [
            {
                "job_id": job_id,
                "minute": at.replace(second=0, microsecond=0),
                "records_processed": processed,
                "records_failed": failed,
            }
        ],
        key=["job", "minute"],
        add=["records_processed", "records_failed"],
    )


def last_hour(now=None):
    """{job id: (records attempted, records failed)} over the last WINDOW, for the active jobs."""
    since = (now or timezone.now()) - WINDOW
    rows = (
        JobActivity.objects.filter(minute__gt=since.replace(second=0, microsecond=0))
        .values("job_id")
        .annotate(processed=Sum("records_processed"), failed=Sum("records_failed"))
        .order_by()
    )
    return {row["job_id"]: (row["processed"], row["failed"]) for row in rows}


def purge(now=None):
    """Drop the rows older than KEEP; return how many went."""
    before = (now or timezone.now()) - KEEP
    deleted, _ = JobActivity.objects.filter(minute__lt=before).delete()
    return deleted
