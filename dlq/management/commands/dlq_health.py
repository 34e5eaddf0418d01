"""`dlq_health [--json]`: the DLQ health of every job, as a table or as JSON."""

import json
from datetime import UTC

from django.core.management.base import BaseCommand

from dlq import health

COLUMNS = ("JOB", "SIZE/MAX", "USAGE", "STATUS", "ADDED", "REJECTED", "LAST ENTRY (UTC)")


class Command(BaseCommand):
    help = "Show the DLQ health of every job: a table, or with --json the list GET /health shows."

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", help="Print it as a JSON list, for machines."
        )

    def handle(self, *args, **options):
        summaries = health.all_jobs_health()
        if options["json"]:
            self.stdout.write(json.dumps([h.as_json() for h in summaries], indent=2))
            return
        if not summaries:
            self.stdout.write("No jobs.")
            return
        rows = [_row(h) for h in summaries]
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        self.stdout.write(_line(COLUMNS, widths))
        for h, row in zip(summaries, rows, strict=True):
            # Styled after padding, so colour codes do not upset the alignment.
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            cells[3] = self._status_style(h.status)(cells[3])
            self.stdout.write("  ".join(cells).rstrip())

    def _status_style(self, status):
        return {
            health.CRITICAL: self.style.ERROR,
            health.WARNING: self.style.WARNING,
            health.CAUTION: self.style.NOTICE,
        }.get(status, self.style.SUCCESS)


def _row(h):
    unbounded = h.max_size is None
    return (
        h.job,
        f"{h.current_size}/{'unbounded' if unbounded else h.max_size}",
        "-" if unbounded else f"{h.capacity_usage_percent:.1f}%",
        h.status,
        str(h.entries_added),
        str(h.entries_rejected),
        h.last_entry_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        if h.last_entry_time
        else "-",
    )


def _line(cells, widths):
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
