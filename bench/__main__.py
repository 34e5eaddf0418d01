"""`python -m bench [--quick]`: load the data, measure every figure, print one table."""

import argparse
import sys
import time

from . import environment

FIGURES = (
    "grouping",
    "persist",
    "e2e",
    "storm",
    "recovery",
    "soak",
    "metrics",
    "admin",
    "errors",
    "requeue",
)


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, a few minutes")
    parser.add_argument(
        "--only", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    only = set(args.only.split(","))
    started = time.monotonic()

    def log(message):
        print(f"[{time.monotonic() - started:6.0f}s] {message}", flush=True)

    try:
        environment.check_services()
    except Exception as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    environment.create_database()
    try:
        environment.setup_django()
        from .plan import run

        rows, pages = run(args.quick, only, log)
        from . import report

        print()
        print(
            f"Velo benchmark ({'quick' if args.quick else 'full'}), "
            f"{time.monotonic() - started:.0f}s in all"
        )
        for line in environment.machine():
            print(line)
        print()
        print(report.render(rows))
        print()
        print("notes:")
        print("\n".join(report.notes(rows)))
        if pages:
            print()
            print("issue 3 page timings (median):")
            print("\n".join(f"  {name}: {seconds * 1000:,.1f} ms" for name, seconds in pages))
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            environment.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
