"""Shapes the product contract fixes, as the tests check them."""

# Every job's DLQ health as JSON, in GET /health and `dlq_health --json`, in this order.
HEALTH_JSON_KEYS = (
    "job",
    "current_size",
    "max_size",
    "capacity_usage_percent",
    "is_at_capacity",
    "entries_added",
    "entries_rejected",
    "last_entry_time",
    "last_capacity_exceeded_time",
    "status",
)
