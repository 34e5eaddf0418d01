"""Regrouping a job's error history: preview new grouping rules, apply them, merge and split groups.

- `runs`: a regroup run's lifecycle: created and audited, planned (a preview
  stops there, with its report), the rules put in force, history moved in
  chunks behind a cursor, resumed when its worker dies.
- `entries`: what a regroup does to the DLQ: the entries' messages for the
  plan, and each entry moved to its new group.
- `merge`: merging groups an operator chose into one, at once.
"""

from .merge import merge_groups
from .runs import (
    InvalidRegroup,
    checked_rules,
    create_run,
    execute_run,
    recover_stalled_runs,
    report_lines,
    start_run,
    unmerge,
)

__all__ = [
    "InvalidRegroup",
    "checked_rules",
    "create_run",
    "execute_run",
    "merge_groups",
    "recover_stalled_runs",
    "report_lines",
    "start_run",
    "unmerge",
]
