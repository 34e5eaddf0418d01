"""`python -m bench.storm_profile [storm|many]`: where a storm's time goes in the worker.

The engine's path alone (dlq.engine.process_batch in this process, no HTTP, no
Celery), on the bench database (BENCH_DB, BENCH_REDIS as for `python -m bench`),
with figure 9's batches (`storm`, every record failing) or figure 9b's (`many`,
1 % failing in 1,000 messages, their groups made first). Prints the records/s
of the workload and of its reference, then a cProfile of the workload sorted by
cumulative time. The database is dropped afterwards.
"""

import cProfile
import io
import pstats
import sys
import time

from . import environment

BATCHES = 50


def main(argv):
    which = argv[0] if argv else "storm"
    environment.check_services()
    environment.create_database()
    try:
        environment.setup_django()
        print(_profile(which))
    finally:
        from django.db import connections

        connections.close_all()
        environment.drop_database()
    return 0


def _profile(which):
    from dlq.engine import process_batch
    from dlq.ingest import submit_batch

    from . import data
    from .figures.e2e import records
    from .figures.storm import many_batches

    def submitted(job, batches):
        return [submit_batch(job, recs)[0].pk for recs in batches]

    def rate(job, batches):
        ids = submitted(job, batches)
        started = time.perf_counter()
        for pk in ids:
            process_batch(pk)
        return sum(map(len, batches)) / (time.perf_counter() - started)

    if which == "many":
        (job,) = data.create_jobs(
            ["profile-many"], dlq_max_size=None, processor="bench.many_errors"
        )
        (reference,) = data.create_jobs(["profile-e2e"], dlq_max_size=None)
        batches, reference_batches = many_batches(), [records()] * BATCHES
        out = [f"first pass, making the groups: {rate(job, batches):,.0f} records/s"]
        batches = batches[:BATCHES]
    else:
        (job,) = data.create_jobs(["profile-storm"], dlq_max_size=None)
        (reference,) = data.create_jobs(["profile-clean"], dlq_max_size=None)
        batches = [records(fail_every=1)] * BATCHES
        reference_batches = [records(fail_every=None)] * BATCHES
        out = []
    rate(job, batches[:5]), rate(reference, reference_batches[:5])  # warm-up
    out.append(f"{which}: {rate(job, batches):,.0f} records/s")
    out.append(f"reference: {rate(reference, reference_batches):,.0f} records/s")
    ids = submitted(job, batches)
    profile = cProfile.Profile()
    profile.enable()
    for pk in ids:
        process_batch(pk)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(40)
    return "\n".join([*out, text.getvalue()])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
