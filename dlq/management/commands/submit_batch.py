"""`submit_batch JOB FILE`: stream records from a JSON array or JSONL file (or stdin) into batches.

The input is read in chunks and submitted batch by batch, so a file of any
size needs only one batch in memory. A batch is only submitted once all of
its lines parsed; when a line is broken the command stops and says exactly
what was already submitted, so nothing is lost or sent twice unknowingly.
"""

import sys
from contextlib import nullcontext

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from dlq.actors import Actor
from dlq.ingest import submit_batch
from dlq.ingest.reader import BadInput, read_records
from dlq.ingest.records import InvalidRecords
from dlq.models import Job


def id_ranges(ids):
    """`4-7, 9`: batch ids, short."""
    ranges = []
    for batch_id in sorted(ids):
        if ranges and batch_id == ranges[-1][1] + 1:
            ranges[-1][1] = batch_id
        else:
            ranges.append([batch_id, batch_id])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


class Command(BaseCommand):
    help = (
        "Submit records from a JSON array or JSON Lines file ('-' for stdin) to a job, "
        "in batches of --batch-size, with a progress bar on stderr."
    )
    # Tests (and callers) may hand in their own stdin, as with createsuperuser.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("job", help="The job's name.")
        parser.add_argument("file", help="A JSON array or JSONL file; '-' reads stdin.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Records per batch.")
        parser.add_argument(
            "--idempotency-key",
            help="Batch N gets the key KEY:N, so rerunning the same input with the same key "
            "and --batch-size skips the batches already submitted.",
        )

    def handle(self, *args, job, file, batch_size, idempotency_key, **options):
        limit = settings.VELO_MAX_BATCH_RECORDS
        if not 1 <= batch_size <= limit:
            raise CommandError(
                f"--batch-size must be between 1 and {limit} (VELO_MAX_BATCH_RECORDS)"
            )
        try:
            job_obj = Job.objects.get(name=job)
        except Job.DoesNotExist:
            known = ", ".join(Job.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no job named {job!r} (known jobs: {known})") from None
        self.job, self.key = job_obj, idempotency_key
        self.file = "stdin" if file == "-" else file
        self.batch_size = batch_size
        self.new_ids, self.existing_ids, self.submitted = [], [], 0
        self.show_progress = options["verbosity"] > 0
        self.verbose = options["verbosity"] > 1

        with self._open(file, options.get("stdin")) as stream:
            self._submit_stream(stream)

        if not self.new_ids and not self.existing_ids:
            self.stdout.write(f"No records in {self.file}: nothing was submitted.")
            return
        self.stdout.write(
            self.style.SUCCESS(f"Submitted {self.submitted:,} records to job {job!r}")
            + f" in {len(self.new_ids)} batch(es): ids {id_ranges(self.new_ids) or '-'}."
        )
        if self.existing_ids:
            self.stdout.write(
                f"{len(self.existing_ids)} batch(es) had already been submitted with this "
                f"idempotency key and were not sent again: ids {id_ranges(self.existing_ids)}."
            )

    def _open(self, file, stdin):
        if file == "-":
            stream = stdin or sys.stdin
            if stream is sys.stdin and hasattr(stream, "reconfigure"):
                stream.reconfigure(encoding="utf-8")
            return nullcontext(stream)
        try:
            # utf-8-sig: a byte-order mark some editors write is not part of the first record.
            return open(file, encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None

    def _submit_stream(self, stream):
        progress = tqdm(
            unit=" records",
            file=self.stderr._out,  # the raw stream: OutputWrapper would add a newline per update
            disable=not self.show_progress,
            desc=f"submitting to {self.job.name}",
            mininterval=0.5,
        )
        kind, lines_of_chunk = "jsonl", []
        try:
            kind, records = read_records(stream, max_record_chars=settings.VELO_MAX_BODY_BYTES)
            chunk = []
            for line, record in records:
                chunk.append(record)
                lines_of_chunk.append(line)
                if len(chunk) == self.batch_size:
                    self._submit_chunk(chunk, lines_of_chunk, progress)
                    chunk, lines_of_chunk = [], []
            if chunk:
                self._submit_chunk(chunk, lines_of_chunk, progress)
        except BadInput as exc:
            problem = f"{self.file}, {exc}"
            if not lines_of_chunk:
                lines_of_chunk = [exc.line]
        except UnicodeDecodeError:
            near = lines_of_chunk[-1] if lines_of_chunk else 1
            problem = f"{self.file} is not UTF-8 text (after line {near})"
        except KeyboardInterrupt:
            problem = "Interrupted."
        else:
            return
        finally:
            progress.close()
        raise CommandError(f"{problem}\n{self._where_it_stopped(kind, lines_of_chunk)}")

    def _submit_chunk(self, chunk, lines, progress):
        number = len(self.new_ids) + len(self.existing_ids) + 1
        key = f"{self.key}:{number}" if self.key else None
        try:
            batch, created = submit_batch(
                self.job, chunk, idempotency_key=key, submitted_by=Actor.shell().name
            )
        except InvalidRecords as exc:
            index = (exc.detail or {}).get("index", 0)
            raise BadInput(lines[index], str(exc)) from None
        if not created and batch.record_count != len(chunk):
            raise BadInput(
                lines[0],
                f"batch {batch.pk} already has the key {key} but holds {batch.record_count} "
                f"records, not {len(chunk)}: rerun with the --batch-size of the first run",
            )
        (self.new_ids if created else self.existing_ids).append(batch.pk)
        self.submitted += len(chunk) if created else 0
        progress.update(len(chunk))
        if self.verbose:
            state = "submitted" if created else "already submitted, not sent again"
            progress.write(
                f"batch {batch.pk}: {len(chunk)} records, {state}", file=self.stdout._out
            )

    def _where_it_stopped(self, kind, lines_of_chunk):
        """What was submitted before the stop, and how to go on losing or doubling nothing."""
        if not self.new_ids and not self.existing_ids:
            return "Nothing was submitted."
        done = len(self.new_ids) + len(self.existing_ids)
        text = (
            f"Nothing from the batch being read was submitted. Already submitted before "
            f"it: {done * self.batch_size:,} records in {done} batch(es) "
            f"(ids {id_ranges(self.new_ids + self.existing_ids)}); they are processed as usual."
        )
        if self.key:
            return text + (
                f" Fix the input and rerun with --idempotency-key {self.key} --batch-size "
                f"{self.batch_size}: the batches already submitted are not sent again."
            )
        if kind == "jsonl" and lines_of_chunk:
            first = lines_of_chunk[0]
            source = "FILE" if self.file == "stdin" else self.file
            return text + (
                f" Fix the input and submit it from line {first} on, e.g. "
                f"`tail -n +{first} {source} | python manage.py submit_batch {self.job.name} -`."
            )
        return text + f" Fix the input and submit it from record {done * self.batch_size + 1} on."
