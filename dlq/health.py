"""DLQ health per job: size against capacity, the room left, and one of four status strings."""

from dataclasses import asdict, dataclass
from datetime import datetime

from .models import Job

HEALTHY = "HEALTHY"
CAUTION = "CAUTION - >70% full"
WARNING = "WARNING - >90% full"
CRITICAL = "CRITICAL - at capacity"
# The numeric level /metrics exports for each status.
LEVELS = {HEALTHY: 0, CAUTION: 1, WARNING: 2, CRITICAL: 3}


def capacity_usage_percent(current_size, max_size):
    if max_size is None:
        return 0.0
    if max_size == 0:  # a DLQ that takes nothing is always full
        return 100.0
    return current_size / max_size * 100


def room_left(job, counters):
    """How many more entries the job's DLQ takes; None when unbounded."""
    if job.dlq_max_size is None:
        return None
    return max(0, job.dlq_max_size - counters.dlq_pending)


def health_status(current_size, max_size):
    """The status string; comparisons are ≥, as in Velostream."""
    if max_size is None:
        return HEALTHY
    if current_size >= max_size:
        return CRITICAL
    usage = capacity_usage_percent(current_size, max_size)
    if usage >= 90:
        return WARNING
    if usage >= 70:
        return CAUTION
    return HEALTHY


@dataclass(frozen=True)
class DLQHealth:
    job: str
    current_size: int
    max_size: int | None
    capacity_usage_percent: float
    is_at_capacity: bool
    entries_added: int
    entries_rejected: int
    last_entry_time: datetime | None
    last_capacity_exceeded_time: datetime | None
    status: str

    def as_json(self):
        data = asdict(self)
        for key in ("last_entry_time", "last_capacity_exceeded_time"):
            data[key] = data[key].isoformat() if data[key] else None
        data["capacity_usage_percent"] = round(data["capacity_usage_percent"], 2)
        return data


def job_health(job, counters):
    size, max_size = counters.dlq_pending, job.dlq_max_size
    return DLQHealth(
        job=job.name,
        current_size=size,
        max_size=max_size,
        capacity_usage_percent=capacity_usage_percent(size, max_size),
        is_at_capacity=max_size is not None and size >= max_size,
        entries_added=counters.dlq_added,
        entries_rejected=counters.dlq_rejected,
        last_entry_time=counters.last_entry_at,
        last_capacity_exceeded_time=counters.last_capacity_exceeded_at,
        status=health_status(size, max_size),
    )


def all_jobs_health():
    """Every job's DLQ health, read from the counters (no COUNT over the DLQ)."""
    jobs = Job.objects.select_related("counters").order_by("name")
    return [job_health(job, job.counters_or_zeros()) for job in jobs]
