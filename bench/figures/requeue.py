"""Figure 6: a requeue run's entries/s (a processor that succeeds) against SQS's 500/s redrive cap.

`dlq.requeue.execute_run` runs in this process on a run over pending entries
of one job, whose records now pass demo.trades; the entries are loaded with
COPY beside the million others, so the run's queries meet the big table.
"""

from dlq.models import DLQEntry, RequeueRun
from dlq.requeue import execute_run

from .. import data
from ..timing import Row, median, timed

JOB = "bench-requeue"
SQS_REDRIVE_PER_SECOND = 500


def run(quick, log):
    runs, size = (3, 2000) if quick else (3, 10_000)
    (job,) = data.create_jobs([JOB], dlq_max_size=None)
    groups = data.create_groups([job], 3, data.now())
    rates = []
    for n in range(runs):
        data.load_entries(
            [job],
            groups,
            size,
            seed=100 + n,
            now=data.now(),
            log=log,
            statuses=[("pending", 1)],
            valid=True,
        )
        data.sync_counters()
        max_id = DLQEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
        requeue_run = RequeueRun.objects.create(
            filters={"job": JOB}, max_id=max_id, total=size, created_by="bench"
        )
        seconds, finished = timed(execute_run, requeue_run.pk)
        assert finished.succeeded == size, (finished.succeeded, finished.failed, finished.skipped)
        rates.append(size / seconds)
    log(f"  requeue entries/s per run: {[round(r) for r in rates]}")
    data.drop_job(JOB)
    return [
        Row(
            "6 requeue run (processor succeeds)",
            median(rates),
            SQS_REDRIVE_PER_SECOND,
            "entries/s",
            20.0,
            True,
            ">= 20x (10,000/s)",
            note=f"median of {runs} runs of {size:,} entries, execute_run in-process; "
            "reference is SQS's published cap, a constant",
        )
    ]
