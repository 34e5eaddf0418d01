"""`purge_expired`: delete what is past retention, in chunks (beat runs the same daily)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dlq import retention

LABELS = {
    "dlq_entries": "resolved/discarded DLQ entries (past their job's dlq_retention_days)",
    "occurrences": "error occurrences (older than {VELO_OCCURRENCE_RETENTION_DAYS} days)",
    "rollups": "error rollups and volumes (older than {VELO_ROLLUP_RETENTION_DAYS} days)",
}


class Command(BaseCommand):
    help = (
        "Delete resolved/discarded DLQ entries past their job's retention, and error "
        "occurrences and rollups past VELO_OCCURRENCE_RETENTION_DAYS / "
        "VELO_ROLLUP_RETENTION_DAYS, in id chunks. Counters are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=retention.CHUNK,
            help="Rows deleted per transaction (default %(default)s).",
        )

    def handle(self, *args, chunk_size, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        counts = retention.purge_expired(chunk=chunk_size)
        days = {
            "VELO_OCCURRENCE_RETENTION_DAYS": settings.VELO_OCCURRENCE_RETENTION_DAYS,
            "VELO_ROLLUP_RETENTION_DAYS": settings.VELO_ROLLUP_RETENTION_DAYS,
        }
        for kind, label in LABELS.items():
            self.stdout.write(f"{counts[kind]:>10,}  {label.format(**days)}")
