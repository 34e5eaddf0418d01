"""How DLQ entries are requeued: one entry, a selection, an error group, or all that match.

- `scope`: what a requeue acts on and how (`RequeueScope`, `RequeueOptions`),
  checked once for every door: admin, API and shell.
- `runs`: a run's lifecycle: created and audited, started on a worker (or run
  here), worked through in chunks with a rate limit and a canary, cancelled,
  resumed when its worker dies.
- `entries`: what happens to each entry: claimed, run again, resolved or back
  to pending.
- `prefetch`: the next chunk claimed while one is being worked on.
- `groups`: one run per error group.
- `holds`: one run per scope at a time: a run over entries a live run holds is refused.
- `fix`: a change to many payloads (JSON Patch, conversions) a run applies
  before it runs each entry again, and its preview.
"""

from .entries import recover_expired_claims
from .fix import FixDoesNotApply, PayloadFix
from .groups import MAX_GROUPS, requeue_groups
from .holds import ScopeHeld
from .runs import (
    cancel,
    create_run,
    execute_run,
    mark_timed_out,
    recover_stalled_runs,
    run_here,
    start_run,
    work_here,
)
from .scope import (
    DEFAULT_CANARY_MAX_FAILURE_RATIO,
    FILTER_KEYS,
    MAX_IDS,
    MAX_RATE_LIMIT,
    MIN_RATE_LIMIT,
    InvalidRequeue,
    RequeueOptions,
    RequeueScope,
    TooManyIds,
    UnknownTarget,
)

__all__ = [
    "DEFAULT_CANARY_MAX_FAILURE_RATIO",
    "FILTER_KEYS",
    "MAX_GROUPS",
    "MAX_IDS",
    "MAX_RATE_LIMIT",
    "MIN_RATE_LIMIT",
    "FixDoesNotApply",
    "InvalidRequeue",
    "PayloadFix",
    "RequeueOptions",
    "RequeueScope",
    "ScopeHeld",
    "TooManyIds",
    "UnknownTarget",
    "cancel",
    "create_run",
    "execute_run",
    "mark_timed_out",
    "recover_expired_claims",
    "recover_stalled_runs",
    "requeue_groups",
    "run_here",
    "start_run",
    "work_here",
]
