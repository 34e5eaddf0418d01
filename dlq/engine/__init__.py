"""How one attempt at a batch runs: the engine behind the `dlq.process_batch` task.

- `attempt`: claim, run, commit: the transaction shape the processor needs (the two shared
  with requeue are `processors.runner.run_then_commit`; fail_batch adds all-or-nothing)
  and the bookkeeping.
- `strategies`: what a failure strategy does with the failures, a pure `plan`.
- `lease`: a batch claimed for one attempt, renewed while it runs, recovered when
  its worker dies.
- `watchdog`: the hard time limit, kept from the worker's parent process: a pool process
  whose record runs past its limit is killed, the record marked for the next attempt.
- `store`: dead letters into the DLQ, within the job's capacity.
- `backoff`: the delay before each retry.
"""

from .attempt import process_batch

__all__ = ["process_batch"]
