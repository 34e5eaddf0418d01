"""Jobs, their counters, batches, DLQ entries with their attempt history, and API tokens."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from errors import rules as grouping_rules
from errors.models import ErrorGroup

from . import processors, redaction
from .fields import JSONTextField


class FailureStrategy(models.TextChoices):
    LOG_AND_CONTINUE = "log_and_continue", "Log and continue"
    SEND_TO_DLQ = "send_to_dlq", "Send to DLQ"
    FAIL_BATCH = "fail_batch", "Fail the batch and retry it"
    RETRY_WITH_BACKOFF = "retry_with_backoff", "Retry failed records with backoff"


class DLQFullPolicy(models.TextChoices):
    REJECT = "reject", "Reject the entry (count it)"
    BACKPRESSURE = "backpressure", "Hold the batch until there is room"


# Time limits, in seconds: a record may run at most MAX_RECORD_TIMEOUT; a batch
# attempt less than the batch lease (VELO_BATCH_LEASE_SECONDS), checked in clean().
MIN_TIMEOUT = 0.1
MAX_RECORD_TIMEOUT = 3600.0


def new_error_key():
    """A new job's error key: never a job's name (names are slugs), so a new job never
    meets the error groups of a job that had its name."""
    return f"job:{uuid.uuid4().hex}"


class JobQuerySet(models.QuerySet):
    def delete(self):
        """Delete the jobs with everything of theirs, once no worker is storing any of it.

        An entry's keys are not database constraints (ENTRY_KEYS): Django's collector
        cascades. It would gather a job's entries while a worker, holding one of its
        batches, was about to commit more, and leave those behind. So the jobs' batches are
        locked first (in id order), then their counters, as the engine and requeues take
        them: the deletion waits for those writers and then collects what they stored.
        """
        with transaction.atomic(using=self.db):
            ids = list(self.values_list("pk", flat=True))
            for model in (Batch, JobCounters):
                rows = model.objects.using(self.db).filter(job_id__in=ids).order_by("pk")
                list(rows.select_for_update().values_list("pk", flat=True))
            jobs = self.model.objects.using(self.db).filter(pk__in=ids)
            return super(JobQuerySet, jobs).delete()

    delete.alters_data = True
    delete.queryset_only = True


class Job(models.Model):
    """A named pipeline: which processor runs its records and what happens when one fails."""

    name = models.SlugField(max_length=100, unique=True)
    error_key = models.CharField(
        max_length=100,
        unique=True,
        editable=False,
        default=new_error_key,
        help_text="What its errors' fingerprints hash for the job: its history's, whatever "
        "its name (a job made before 0019 keeps the name it had then).",
    )
    processor = models.CharField(max_length=200, help_text="A registered processor name.")
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            'The processor\'s options. "redact_fields": ["iban", …] masks these payload fields'
            " too, beside VELO_REDACT_FIELDS."
        ),
    )
    grouping = models.JSONField(
        default=list,
        blank=True,
        help_text="The job's own grouping rules in force; a regroup run changes them.",
    )
    failure_strategy = models.CharField(
        max_length=32, choices=FailureStrategy.choices, default=FailureStrategy.SEND_TO_DLQ
    )
    dlq_enabled = models.BooleanField(
        default=True, help_text="Under log_and_continue: keep failed records in the DLQ."
    )
    dlq_max_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=100_000,
        help_text="Pending entries at most; empty = unbounded.",
    )
    dlq_full_policy = models.CharField(
        max_length=16, choices=DLQFullPolicy.choices, default=DLQFullPolicy.REJECT
    )
    max_retries = models.PositiveIntegerField(default=3)
    retry_initial_delay = models.FloatField(default=1.0, validators=[MinValueValidator(0)])
    retry_multiplier = models.FloatField(default=2.0, validators=[MinValueValidator(1)])
    retry_max_delay = models.FloatField(default=60.0, validators=[MinValueValidator(0)])
    dlq_retention_days = models.PositiveIntegerField(default=14)
    failure_rate_warning_percent = models.FloatField(
        default=5.0,
        db_default=5.0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="The DLQ health page warns when the last hour's failure rate reaches this.",
    )
    record_timeout = models.FloatField(
        default=30.0,
        db_default=30.0,
        validators=[MinValueValidator(MIN_TIMEOUT), MaxValueValidator(MAX_RECORD_TIMEOUT)],
        help_text="Seconds one record may run; a record over it fails with RecordTimeout.",
    )
    batch_timeout = models.FloatField(
        default=240.0,
        db_default=240.0,
        validators=[MinValueValidator(MIN_TIMEOUT)],
        help_text=(
            "Seconds one attempt at a batch may run (below the batch lease); the records it"
            " finished are committed, the rest retried."
        ),
    )
    enabled = models.BooleanField(default=True)
    # Operational state, not configuration (dlq.pause): not in a jobs file, not on the form.
    paused_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When it was paused: its batches are kept, not processed. Empty: running.",
    )
    release_started_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a resume began sending the batches that waited. Empty: none is.",
    )
    release_rate = models.FloatField(
        null=True,
        blank=True,
        editable=False,
        help_text="Batches a second that resume sends; empty: as fast as the dispatcher sends.",
    )
    release_paced = models.PositiveIntegerField(
        default=0,
        db_default=0,
        editable=False,
        help_text="Batches the resume's schedule has used (time the dispatcher lost is skipped).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["enabled"], name="job_enabled_idx")]

    def __str__(self):
        return self.name

    def delete(self, using=None, keep_parents=False):
        """As JobQuerySet.delete: once no worker is storing any of the job's entries."""
        return type(self).objects.using(using or self._state.db).filter(pk=self.pk).delete()

    def counters_or_zeros(self):
        """The job's counters; zeros for a job whose counters row is missing (fixtures, raw SQL)."""
        try:
            return self.counters
        except JobCounters.DoesNotExist:
            return JobCounters(job=self)

    def clean(self):
        if self.processor and self.processor not in processors.registry:
            known = ", ".join(processors.registry)
            raise ValidationError(
                {"processor": f"Unknown processor {self.processor!r}; known: {known}"}
            )
        try:
            processors.resolve(self.processor).check_config(self.config)
        except ValueError as exc:
            raise ValidationError({"config": str(exc)}) from None
        try:
            redaction.check_config(self.config)
        except ValueError as exc:
            raise ValidationError({"config": str(exc)}) from None
        try:
            grouping_rules.Rules.parse(self.grouping)
        except grouping_rules.InvalidRules as exc:
            raise ValidationError({"grouping": str(exc)}) from None
        self._clean_timeouts()

    def _clean_timeouts(self):
        """batch_timeout below the lease (else a slow attempt would be handed out twice), and no
        shorter than record_timeout (so every attempt gives its first record its full time,
        and a batch that keeps timing out still moves on)."""
        lease = settings.VELO_BATCH_LEASE_SECONDS
        if self.batch_timeout is None or self.record_timeout is None:
            return  # the field's own validation says so
        if self.batch_timeout >= lease:
            raise ValidationError(
                {
                    "batch_timeout": f"Must be below the batch lease, VELO_BATCH_LEASE_SECONDS"
                    f" ({lease:g} s); got {self.batch_timeout:g} s."
                }
            )
        if self.record_timeout > self.batch_timeout:
            raise ValidationError(
                {
                    "record_timeout": f"Must not exceed batch_timeout ({self.batch_timeout:g} s);"
                    f" got {self.record_timeout:g} s."
                }
            )

    @property
    def grouping_rules(self):
        """The job's grouping rules, compiled (errors.rules.Rules)."""
        return grouping_rules.of(self.grouping)


class JobCounters(models.Model):
    """Per-job totals that /metrics and the health summary read.

    Kept apart from Job so that saving a job in the admin never writes back
    stale counts; every change is an F() increment in the transaction of the
    work it counts.
    """

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="counters")
    records_processed = models.BigIntegerField(default=0)
    records_failed = models.BigIntegerField(default=0)
    batches_succeeded = models.BigIntegerField(default=0)
    batches_partial = models.BigIntegerField(default=0)
    batches_failed = models.BigIntegerField(default=0)
    batch_retries = models.BigIntegerField(default=0)
    dlq_added = models.BigIntegerField(default=0)
    dlq_rejected = models.BigIntegerField(default=0)
    dlq_requeued = models.BigIntegerField(default=0)
    dlq_resolved = models.BigIntegerField(default=0)
    dlq_discarded = models.BigIntegerField(default=0)
    dlq_pending = models.BigIntegerField(
        default=0,
        help_text="Current DLQ size: pending entries, and requeued ones not resolved yet.",
    )
    last_entry_at = models.DateTimeField(null=True, blank=True)
    last_capacity_exceeded_at = models.DateTimeField(null=True, blank=True)
    batch_duration_sum = models.FloatField(default=0.0, help_text="Seconds, finished batches.")
    batches_recovered = models.BigIntegerField(
        default=0, help_text="Attempts handed out again after a worker died or a lease ran out."
    )
    idempotent_replays = models.BigIntegerField(
        default=0, help_text="Submissions answered with the batch of an earlier Idempotency-Key."
    )
    record_timeouts = models.BigIntegerField(
        default=0, db_default=0, help_text="Record attempts that failed with RecordTimeout."
    )

    class Meta:
        verbose_name_plural = "job counters"

    def __str__(self):
        return f"counters of {self.job}"

    @property
    def failure_rate_percent(self):
        """Failed record attempts per 100 attempted (0 when nothing was processed)."""
        if not self.records_processed:
            return 0.0
        return self.records_failed / self.records_processed * 100


class JobActivity(models.Model):
    """Records attempted and failed by a job in one minute: the rates of the last hour.

    The counters above are totals since the start; "is it failing now?" needs
    a window. One row per job and minute is added to (INSERT ... ON CONFLICT)
    in the transaction of the attempt it counts; retention drops old rows.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="activity")
    minute = models.DateTimeField(help_text="The start of the minute, in UTC.")
    records_processed = models.BigIntegerField(default=0)
    records_failed = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "job activity"
        constraints = [
            models.UniqueConstraint(fields=["job", "minute"], name="jobactivity_job_minute_uniq"),
        ]
        indexes = [models.Index(fields=["minute"], name="jobactivity_minute_idx")]

    def __str__(self):
        failed, processed = self.records_failed, self.records_processed
        return f"{self.job_id} {self.minute:%Y-%m-%d %H:%M}: {failed}/{processed} failed"


class BatchDurationBucket(models.Model):
    """One bucket of a job's batch-duration histogram, stored so every web process agrees.

    `le` is the bucket's upper bound in seconds (the last one is +Inf); `count`
    holds the batches in that bucket alone, made cumulative at scrape time.
    """

    BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="duration_buckets")
    le = models.FloatField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "le"], name="durationbucket_job_le_uniq"),
        ]

    def __str__(self):
        return f"{self.job_id} ≤{self.le}s: {self.count}"


class HeldByWorker(models.Model):
    """Which worker instance (and pool process) holds a claimed row: dlq.liveness hands the
    row out again as soon as that worker is known dead, not only when a lease runs out."""

    worker = models.CharField(
        max_length=32, blank=True, help_text="Boot id of the worker instance holding the claim."
    )
    worker_pid = models.PositiveIntegerField(
        null=True, blank=True, help_text="The pool process that holds it."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Batch(HeldByWorker):
    """Records submitted to a job, persisted before they are queued."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"

    IN_FLIGHT = (Status.QUEUED, Status.RUNNING, Status.RETRYING)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="batches")
    records = JSONTextField(help_text="The submitted records, in order.")
    record_count = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # NULL, not "", when absent: the unique constraint must not match keyless batches.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # sha256 of the records (canonical JSON) submitted with the key: a replay of
    # the key with other records is refused, not answered with this batch.
    records_hash = models.CharField(max_length=64, blank=True)
    submitted_by = models.CharField(max_length=200, blank=True)
    # Totals over all attempts: processed and failed count every record of every attempt.
    attempts = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    dlq_added = models.PositiveIntegerField(default=0)
    dlq_rejected = models.PositiveIntegerField(default=0)
    # What the next attempt works on: record indexes still to try, and failures
    # still waiting for room in a full DLQ (backpressure).
    pending_indexes = models.JSONField(null=True, blank=True)
    held_failures = models.JSONField(null=True, blank=True)
    final_status = models.CharField(
        max_length=16,
        choices=Status.choices,
        blank=True,
        help_text="The outcome waiting for held failures to be stored.",
    )
    last_error = models.TextField(blank=True)
    # Scheduling and claiming: due time kept here, dispatched by beat.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lost_attempts = models.PositiveIntegerField(
        default=0,
        help_text="Attempts that ended unrecorded (worker died, or results unstorable).",
    )
    # Records the watchdog stopped by killing their pool process ({"index": seconds}):
    # the next attempt fails them with RecordTimeout without running them again.
    timed_out = models.JSONField(null=True, blank=True)
    batch_timeouts = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Attempts its batch_timeout cut short; they do not count against max_retries.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(
                fields=["job", "idempotency_key"], name="batch_job_idempotency_key_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="batch_status_due_idx"),
            models.Index(fields=["job", "status"], name="batch_job_status_idx"),
            models.Index(fields=["created_at"], name="batch_created_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="batch_status_lease_idx"),
        ]

    def __str__(self):
        # Titles and links name the job; lists that show batches select_related it.
        return f"batch {self.pk} of {self.job.name} ({self.get_status_display().lower()})"


class TracebackHead(models.Model):
    """A failure site's traceback up to its final exception line, stored once for its entries.

    A storm fails every record at one site: their tracebacks share these frames and differ
    only in their last line, which stays in the entry (dlq.tracebacks). Never purged: the
    heads are as many as the code paths that fail (a new one when a deploy moves a line),
    under VELO_MAX_TRACEBACK_CHARS each, and purging them would need an index on every
    entry's head, written with every failed record.
    """

    digest = models.CharField(
        max_length=64, unique=True, help_text="The text's SHA-256, in hex: how a site is found."
    )
    text = models.TextField(help_text="The traceback up to, not including, its final line.")

    class Meta:
        verbose_name = "traceback head"

    def __str__(self):
        return f"traceback head {self.pk}"


# The foreign keys of the DLQ's rows written by the thousand (entries in a storm, attempts in
# a requeue): no index of their own (a composite index leads with each where a query needs
# one) and no database constraint (DLQEntry says why).
ENTRY_KEYS = {"db_index": False, "db_constraint": False}


class DLQEntry(models.Model):
    """One failed record kept for an operator to read, fix and requeue."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        REQUEUED = "requeued", "Requeued"
        RESOLVED = "resolved", "Resolved"
        DISCARDED = "discarded", "Discarded"

    # The foreign keys lead composite indexes below, which serve their joins
    # and cascades; an index of their own would only slow every insert.
    # Nor are they database constraints (ENTRY_KEYS): PostgreSQL checked each at
    # commit, a locked parent lookup per key per failed record (214 ms for 20,000
    # entries against 7 ms without, as much again as writing the rows). Every
    # delete goes through Django, whose collector cascades and protects, after
    # locking what writers hold: a job's batches and counters (JobQuerySet.delete),
    # a regroup's folded groups (errors.regroup.finish).
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dlq_entries", **ENTRY_KEYS)
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, related_name="dlq_entries", **ENTRY_KEYS
    )
    index = models.PositiveIntegerField(help_text="Position of the record in its batch.")
    payload = models.JSONField()
    error_message = models.TextField()
    error_message_length = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The message's length in characters before it was cut to "
        "VELO_MAX_ERROR_MESSAGE_CHARS (empty for entries stored before it was kept).",
    )
    error_type = models.CharField(max_length=200)
    traceback = models.TextField(
        blank=True, help_text="Its final line only, when its head is its site's (traceback_head)."
    )
    # No index: nothing looks entries up by their head, and heads are never deleted.
    traceback_head = models.ForeignKey(
        TracebackHead,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        **ENTRY_KEYS,
    )
    error_group = models.ForeignKey(
        ErrorGroup, on_delete=models.PROTECT, related_name="dlq_entries", **ENTRY_KEYS
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=1)
    # A storm writes one row per failed record, not two: the entry's own fields (created_at,
    # node_id, error_message as first stored) are its original attempt until a requeue that
    # fails is about to overwrite them, which writes that attempt's row first (dlq.history).
    # The database's default too: a bulk load that leaves the column out (bench.data) stores
    # entries whose row is their original attempt.
    original_attempt_stored = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Whether the original attempt has its own row in the attempt history; "
        "until then the entry's creation time, node and first error are that attempt.",
    )
    node_id = models.CharField(max_length=200, blank=True)
    node_name = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    original_payload = models.JSONField(
        null=True, blank=True, help_text="The record as it failed, kept when an operator edits it."
    )
    # While requeued: the run that claimed it and until when; an entry whose
    # claim runs out (its worker died) goes back to pending.
    requeue_run = models.ForeignKey(
        "RequeueRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        **ENTRY_KEYS,
    )
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "DLQ entry"
        verbose_name_plural = "DLQ entries"
        permissions = [
            ("requeue_dlqentry", "Can requeue DLQ entries"),
            ("discard_dlqentry", "Can discard DLQ entries"),
            ("view_sensitive_payload", "Can view DLQ payload fields that are redacted"),
        ]
        constraints = [
            # A redelivered batch can never store the same record twice.
            models.UniqueConstraint(fields=["batch", "index"], name="dlqentry_batch_index_uniq"),
        ]
        # Lists and requeue runs walk entries by id within a filter, so each
        # filter's index ends in id (the oldest pending entry of a job is its
        # first pending id). Every index is written on every failed record and
        # on each of a requeue's two status changes, so there are few, and
        # those only requeues, retention and the rarer statuses need are
        # partial: a new pending entry never touches them.
        indexes = [
            models.Index(fields=["job", "status", "id"], name="dlqentry_job_status_id_idx"),
            models.Index(fields=["error_group", "status", "id"], name="dlqentry_group_status_idx"),
            models.Index(fields=["job", "id"], name="dlqentry_job_id_idx"),
            models.Index(fields=["error_group", "id"], name="dlqentry_group_id_idx"),
            models.Index(fields=["created_at"], name="dlqentry_created_idx"),
            # The list opens on the newest pending entries: this serves that page and its
            # bounded count whatever the share of pending entries (a backward scan of the
            # primary key would read every newer resolved one first).
            models.Index(
                fields=["id"],
                name="dlqentry_pending_id_idx",
                condition=Q(status="pending"),
            ),
            models.Index(
                fields=["status", "id"],
                name="dlqentry_not_pending_idx",
                condition=Q(status__in=["requeued", "resolved", "discarded"]),
            ),
            models.Index(
                fields=["job", "id"],
                name="dlqentry_purgeable_idx",
                condition=Q(status__in=["resolved", "discarded"]),
            ),
            models.Index(
                fields=["requeue_run"],
                name="dlqentry_requeue_run_idx",
                condition=Q(requeue_run__isnull=False),
            ),
            # Beat looks for requeue claims that ran out every second.
            models.Index(
                fields=["claimed_until"],
                name="dlqentry_claim_expiry_idx",
                condition=Q(status="requeued"),
            ),
        ]

    def __str__(self):
        return f"DLQ entry {self.pk} of {self.job.name} ({self.get_status_display().lower()})"

    @property
    def full_traceback(self):
        """The traceback as it was captured (load traceback_head with it: select_related)."""
        head = self.traceback_head
        return self.joined_traceback(head.text if head else None, self.traceback)

    @staticmethod
    def joined_traceback(head_text, rest):
        """The whole traceback of a stored head (None or "": none) and rest; for rows read
        as values, as full_traceback is for instances."""
        return (head_text or "") + rest

    @classmethod
    def oldest_pending_of(cls, job):
        """A subquery: the creation time of `job`'s oldest pending entry (job may be OuterRef).

        Within a job, ids follow creation times (the engine stamps entries under
        the job's locked counters), so the first pending id is the oldest: one
        probe of (job, status, id), whatever the size of the DLQ.
        """
        return (
            cls.objects.filter(job=job, status=cls.Status.PENDING)
            .order_by("pk")
            .values("created_at")[:1]
        )


class DLQAttempt(models.Model):
    """One try of a DLQ entry's record: every requeue, and the original failure once a
    requeue that failed overwrote the entry's error (until then the entry's row holds it,
    see DLQEntry.original_attempt_stored and dlq.history)."""

    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original processing"
        REQUEUE = "requeue", "Requeue"

    class Outcome(models.TextChoices):
        FAILED = "failed", "Failed"
        SUCCEEDED = "succeeded", "Succeeded"
        REJECTED = "rejected", "Rejected"
        NOT_FIXED = "not_fixed", "Fix did not apply"

    entry = models.ForeignKey(
        DLQEntry, on_delete=models.CASCADE, related_name="history", **ENTRY_KEYS
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    started_by = models.CharField(max_length=200, help_text="A user name, or the worker.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_message = models.TextField(blank=True)
    requeue_run = models.ForeignKey(
        "RequeueRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attempts",
        **ENTRY_KEYS,
    )
    payload_edited = models.BooleanField(default=False)
    payload_diff = models.JSONField(
        null=True,
        blank=True,
        help_text="What a bulk fix changed in the payload for this attempt (RFC 6902, with "
        '"was" for the old values).',
    )
    node_id = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()

    class Meta:
        verbose_name = "DLQ attempt"
        # (entry, at) also serves the entry foreign key; original attempts
        # (most rows) have no run, so the run's index leaves them out.
        indexes = [
            models.Index(fields=["entry", "at"], name="dlqattempt_entry_at_idx"),
            models.Index(
                fields=["requeue_run"],
                name="dlqattempt_requeue_run_idx",
                condition=Q(requeue_run__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.kind} of entry {self.entry_id}: {self.outcome}"


class ApiToken(models.Model):
    """A bearer token for the HTTP API, stored as a sha256 hash."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The token's first characters, to tell it.")
    token_hash = models.CharField(max_length=64, unique=True)
    # Every job is a flag, never an empty list: a token whose jobs are all
    # deleted is left with none, and must then use none (fail closed).
    all_jobs = models.BooleanField(
        "every job",
        default=False,
        help_text="May use every job, today's and future ones. Off: only the jobs listed.",
    )
    jobs = models.ManyToManyField(
        Job,
        blank=True,
        related_name="api_tokens",
        help_text="The jobs the token may use when it is not for every job. None listed and "
        "not for every job: the token may use no job, so it does nothing.",
    )
    can_requeue = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class RequeueRun(HeldByWorker):
    """A requeue of many DLQ entries, worked through in the background with progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # How a canary's stop_reason starts: the run is cancelled (SPEC's status) by its canary.
    CANARY_STOP = "canary stopped the run"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # What it acts on: explicit ids, or a filter (job, error_group, batch) cut
    # at max_id, the newest entry the operator saw, so later arrivals are left out.
    entry_ids = models.JSONField(null=True, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    max_id = models.BigIntegerField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    rate_limit = models.FloatField(null=True, blank=True, help_text="Entries per second at most.")
    canary_size = models.PositiveIntegerField(null=True, blank=True)
    canary_max_failure_ratio = models.FloatField(null=True, blank=True)
    fix = models.JSONField(
        null=True,
        blank=True,
        help_text='A fix applied to each payload before it is run again: {"patch": [RFC 6902 '
        'operations], "convert": [{"path", "to"}]}.',
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(
        default=0,
        help_text="Entries no longer pending when reached (resolved, taken by another run).",
    )
    not_fixed = models.PositiveIntegerField(
        default=0, help_text="Entries the run's fix did not apply to, left pending as they were."
    )
    last_id = models.BigIntegerField(
        default=0, help_text="Progress cursor: entries up to here are done."
    )
    cancel_requested = models.BooleanField(default=False)
    # Which execution holds the run: one whose worker was declared dead commits nothing more.
    claim_token = models.CharField(max_length=32, blank=True)
    stop_reason = models.TextField(blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A rate-limited run waiting for its next chunk is due then; no worker holds "
        "it meanwhile (set only while it waits).",
    )
    timed_out = models.JSONField(
        null=True,
        blank=True,
        help_text="Entries whose record the watchdog stopped ({entry id: seconds}): failed "
        "with RecordTimeout without running again when the run resumes.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "requeue run"
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="requeuerun_status_beat_idx"),
            models.Index(fields=["created_at"], name="requeuerun_created_idx"),
        ]

    def __str__(self):
        kind = "dry run" if self.dry_run else "requeue run"
        return f"{kind} {self.pk}: {self.outcome[0].lower()}{self.outcome[1:]}"

    @property
    def stopped_by_canary(self):
        return self.status == self.Status.CANCELLED and self.stop_reason.startswith(
            self.CANARY_STOP
        )

    @property
    def outcome(self):
        """What an operator asks of a run, "did it work?", in a few words; `status` stays
        the API's four values."""
        if self.status in self.ACTIVE:
            return self.get_status_display()
        if self.stopped_by_canary:
            return f"Stopped by the canary: {self.failed} of {self.done} failed again"
        if self.status == self.Status.CANCELLED:
            return f"Cancelled after {self.done} of {self.total}"
        if self.dry_run:
            return f"Dry run: {self.total} would be requeued"
        if not self.done and self.not_fixed:
            text = f"Finished: the fix applied to none of {self.not_fixed}"
        elif not self.done:
            text = "Finished: nothing to requeue"
        elif not self.failed:
            text = f"Finished: all {self.succeeded} resolved"
        elif not self.succeeded:
            text = f"Finished: none resolved, all {self.failed} failed again"
        else:
            text = f"Finished: {self.succeeded} resolved, {self.failed} failed again"
        if self.not_fixed and self.done:
            text += f", {self.not_fixed} not fixed"
        return f"{text}, {self.skipped} skipped" if self.skipped else text

    @property
    def outcome_class(self):
        """The health page's colours: how worried the outcome should make the reader."""
        if self.status in self.ACTIVE or self.dry_run:
            return "caution"
        if self.stopped_by_canary or (self.done and not self.succeeded):
            return "critical"
        if self.failed or self.not_fixed or self.status == self.Status.CANCELLED:
            return "warning"
        return "healthy"

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class RegroupRun(HeldByWorker):
    """A job's error history regrouped under new grouping rules (or a preview of it).

    A preview (dry run) only plans: its report says which groups would merge or
    split and what would move. Applying plans again, puts the rules in force,
    then moves occurrences and DLQ entries a chunk at a time behind a cursor,
    so a run whose worker died resumes where it stopped.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        PLAN = "plan", "Planning"
        OCCURRENCES = "occurrences", "Moving occurrences"
        ENTRIES = "entries", "Moving DLQ entries"
        FINISH = "finish", "Folding merged groups"
        DONE = "done", "Done"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="regroup_runs")
    rules = models.JSONField(default=list, blank=True, help_text="The grouping rules it applies.")
    dry_run = models.BooleanField(default=False, help_text="A preview: plan and report only.")
    groups = models.JSONField(
        null=True, blank=True, help_text="Only these error groups (split back into their parts)."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.PLAN)
    cursor = models.BigIntegerField(default=0, help_text="Rows up to this id are done.")
    plan = models.JSONField(null=True, blank=True)
    report = models.JSONField(null=True, blank=True)
    moved_occurrences = models.PositiveIntegerField(default=0)
    moved_entries = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "regroup run"
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="regrouprun_status_beat_idx"),
            models.Index(fields=["job", "created_at"], name="regrouprun_job_created_idx"),
        ]

    def __str__(self):
        kind = "preview" if self.dry_run else "regroup"
        return f"{kind} {self.pk} of {self.job_id} ({self.status})"


class OperatorAction(models.Model):
    """The audit trail: every operator action, who, when, on what, and how it ended."""

    class Action(models.TextChoices):
        REQUEUE = "requeue", "Requeue"
        EDIT = "edit", "Edit payload"
        DISCARD = "discard", "Discard"
        RESOLVE = "resolve", "Resolve error group"
        IGNORE = "ignore", "Ignore error group"
        CANCEL = "cancel", "Cancel requeue run"
        EXPORT = "export", "Export"
        REGROUP = "regroup", "Regroup error history"
        MERGE = "merge", "Merge error groups"
        FIX = "fix", "Fix payloads and requeue"
        TOKEN_CREATE = "token_create", "Create API token"
        TOKEN_CHANGE = "token_change", "Change API token"
        TOKEN_REVOKE = "token_revoke", "Revoke API token"
        PAUSE = "pause", "Pause job"
        RESUME = "resume", "Resume job"

    at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, help_text="Kept if the user is deleted.")
    via = models.CharField(max_length=16, default="admin", help_text="admin, api or shell.")
    action = models.CharField(max_length=16, choices=Action.choices)
    target = models.CharField(max_length=200, help_text="What it acted on, in words.")
    filters = models.JSONField(default=dict, blank=True)
    entry_ids = models.JSONField(null=True, blank=True, help_text="At most the first 1,000 ids.")
    count = models.PositiveIntegerField(default=0)
    dry_run = models.BooleanField(default=False)
    outcome = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    requeue_run = models.ForeignKey(
        RequeueRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    regroup_run = models.ForeignKey(
        RegroupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )

    class Meta:
        verbose_name = "operator action"
        indexes = [
            models.Index(fields=["at"], name="opaction_at_idx"),
            models.Index(fields=["action", "at"], name="opaction_action_at_idx"),
        ]

    def __str__(self):
        return f"{self.username} {self.action} {self.target} at {self.at:%Y-%m-%d %H:%M:%S}"


class WorkerInstance(models.Model):
    """One start of a Celery worker process, beating every few seconds (dlq.liveness).

    Written by the worker's parent process, which runs no records, so a record
    that holds the GIL in a pool child cannot starve it. A claim names the
    instance (boot id) and pool process holding it; recovery hands the work out
    again when the instance is dead, stale, or no longer has that process.
    """

    boot_id = models.CharField(max_length=32, unique=True)
    node_name = models.CharField(max_length=200, help_text="Celery's node name (-n).")
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    pool_pids = models.JSONField(default=list, help_text="Live pool processes, at the last beat.")
    queues = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    up_since = models.DateTimeField(help_text="Start of its current unbroken run of beats.")
    dead_at = models.DateTimeField(null=True, blank=True)
    dead_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "worker instance"
        indexes = [
            models.Index(fields=["node_name", "dead_at"], name="workerinstance_node_idx"),
            models.Index(fields=["last_seen"], name="workerinstance_seen_idx"),
        ]

    def __str__(self):
        return f"{self.node_name} pid {self.pid}"
