"""The operator permissions, by name: what the admin, the pages and the API check alike."""

REQUEUE = "dlq.requeue_dlqentry"
DISCARD = "dlq.discard_dlqentry"
TRIAGE = "errors.change_errorgroup"  # resolve and ignore error groups
VIEW_ENTRIES = "dlq.view_dlqentry"  # read records, messages and tracebacks in the DLQ
