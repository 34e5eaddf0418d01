"""The operator permissions, by name: what the admin, the pages and the API check alike."""

REQUEUE = "dlq.requeue_dlqentry"
DISCARD = "dlq.discard_dlqentry"
TRIAGE = "errors.change_errorgroup"  # resolve and ignore error groups
# Who may view a model (entries, groups, jobs) is the admin's own rule: common.access.may_view.
