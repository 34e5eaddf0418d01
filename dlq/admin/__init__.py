"""What operators see in the admin. Each module registers its admins when imported:

- `jobs`: jobs with their live counters and health, and batches.
- `entries`: the DLQ list (fast at millions of rows), an entry's page and the
  list's actions; `entry_pages` adds the Requeue, Edit payload, Discard and
  "requeue all matching" pages; `filters`, `forms` and `export` serve them.
- `runs`: requeue runs with progress and cancel.
- `regroup`: regroup runs: a preview's report and the button that applies it; the
  job page's grouping rules are changed through them.
- `audit`: the read-only trail of operator actions.
- `error_groups`: the error groups' admin with resolve, ignore and requeue_group.
- `tokens`: API tokens, limited and revoked here.
- `permissions`: the requeue, discard and triage permissions all of them check.

Lists over big tables run no full COUNT(*), no facet or DISTINCT filter query
and load no big column (common.admin.BigTableAdmin). What the engine writes is
read-only here: operators act through actions that call the services.
"""

from . import audit, entries, error_groups, jobs, regroup, runs, tokens  # noqa: F401  (they register)
