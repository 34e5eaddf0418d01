"""`recount_backlogs`: set every error group's DLQ backlog from its entries.

The backlog (ErrorGroup.dlq_pending) is kept as entries change; this command
repairs it after a rolling deploy in which old workers stored entries without
counting them, or after rows were loaded by hand. Groups are recounted in id
chunks, each in its own short transaction.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from common.chunks import iter_id_chunks
from dlq import backlog
from errors.models import ErrorGroup


class Command(BaseCommand):
    help = "Recount every error group's DLQ backlog (dlq_pending) from its DLQ entries."

    def handle(self, *args, **options):
        done = 0
        for ids in iter_id_chunks(ErrorGroup.objects.all(), 500):
            with transaction.atomic():
                backlog.recount(ids)
            done += len(ids)
        self.stdout.write(f"Recounted the DLQ backlog of {done} error groups.")
