"""`velo_demo [--records N] [--forever]`: create the demo jobs and feed them demo traffic."""

import random

from django.core.management.base import BaseCommand

from demo.feed import DEMO_JOBS, Feed, ensure_demo_jobs, feed, feed_forever


class Command(BaseCommand):
    help = (
        "Create the demo jobs (one per failure strategy, plus a small DLQ that fills up) if "
        "they are missing, then submit demo trades with a realistic mix of failures."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--records",
            type=int,
            help="Records to submit at once (default 1000; 0 with --forever unless given).",
        )
        parser.add_argument(
            "--forever",
            action="store_true",
            help="Then keep submitting a small batch every --interval seconds until Ctrl-C.",
        )
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between batches.")
        parser.add_argument(
            "--seed", type=int, default=42, help="Seed of the record generator (reproducible runs)."
        )

    def handle(self, *args, records, forever, interval, seed, **options):
        if records is None:
            records = 0 if forever else 1000
        created = ensure_demo_jobs()
        names = ", ".join(job["name"] for job in DEMO_JOBS)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created demo jobs: {', '.join(created)}"))
        else:
            self.stdout.write(f"Demo jobs exist: {names}")

        state = Feed(random.Random(seed))
        if records > 0:
            feed(state, records)
            self.stdout.write(
                f"Submitted {state.records} records ({state.bad} bad) in {state.batches} batches "
                f"to {names}."
            )
        if forever:
            self._feed_forever(state, interval, verbose=options["verbosity"] > 1)

    def _feed_forever(self, state, interval, *, verbose):
        self.stdout.write(f"Feeding a small batch every {interval:g} s; Ctrl-C to stop.")

        def report(batch):
            if verbose:
                self.stdout.write(f"batch {batch.pk}: {batch.record_count} records to {batch.job}")

        try:
            feed_forever(state, interval=interval, on_batch=report)
        except KeyboardInterrupt:
            self.stdout.write(
                f"\nStopped. Submitted {state.batches} batches in all "
                f"({state.records} records, {state.bad} bad)."
            )
