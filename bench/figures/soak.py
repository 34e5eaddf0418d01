"""Figure 11: the chaos soak's throughput with its faults, against the same soak without them.

Both runs are devtools.soak on copies of their own (a scratch PostgreSQL cluster and Redis):
gunicorn, a control worker, two prefork batch workers, beat, one client submitting
50-400-record batches with an Idempotency-Key. With faults, each worker, beat and a
gunicorn worker are SIGKILLed, Redis is down 5 s and PostgreSQL 3 s. Throughput is the
records accepted over the time from the first submission to every batch finished. No goal
yet: the figure says what the faults cost.
"""

import tempfile
from pathlib import Path

from devtools import soak as chaos

from ..timing import Row


def _one(faults, load_seconds, log):
    with tempfile.TemporaryDirectory(prefix="velo-bench-soak-") as tmp:
        site = chaos.Soak(Path(tmp))
        try:
            token = chaos.start(site)
            outcome = chaos.run(site, token, faults=faults, load_seconds=load_seconds)
        finally:
            site.stop()
    rate = outcome.records / outcome.seconds
    log(
        f"  {'with' if faults else 'without'} faults: {outcome.records:,} records in "
        f"{len(outcome.accepted):,} batches, {outcome.seconds:.1f} s to all done "
        f"({rate:,.0f} records/s); answers {dict(outcome.answers)}"
    )
    return rate, outcome


def run(quick, log):
    load_seconds = 60  # the fault schedule needs ~50 s
    calm, _ = _one(False, load_seconds, log)
    stormy, outcome = _one(True, load_seconds, log)
    return [
        Row(
            "11 chaos soak throughput, faults vs none",
            stormy,
            calm,
            "records/s",
            None,
            True,
            "printed (no goal yet)",
            note=f"{load_seconds} s of load each; with faults all work was done "
            f"{outcome.settled_after_last_fault:.1f} s after the last fault; "
            f"workers restarted after exiting by themselves: {outcome.restarts or 'none'}",
        )
    ]
