"""How records get in: checked at the door, stored as a batch, then queued.

- `submit`: `submit_batch(job, records)`, which every way in calls (the API, the
  `submit_batch` command, the demo feed).
- `records`: the rules a record must meet to be accepted, so that it can always
  be stored and processed.
- `reader`: a JSON array or JSON Lines stream read a record at a time, with line
  numbers for its errors (the `submit_batch` command's input).
"""

from .submit import submit_batch

__all__ = ["submit_batch"]
