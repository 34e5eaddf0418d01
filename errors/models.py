"""Error groups, the fingerprints that lead to them, their occurrences, and the stored totals."""

from django.db import models

from .fingerprint import GROUPING_VERSION


class ErrorGroup(models.Model):
    """All errors of one job that share a type and a normalised message."""

    class Status(models.TextChoices):
        UNRESOLVED = "unresolved", "Unresolved"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    fingerprint = models.CharField(
        max_length=64, unique=True, help_text="sha256 of (job, error type, template)."
    )
    job_name = models.CharField(
        max_length=100, help_text="The job whose records failed (its name now: kept on rename)."
    )
    # A plain id, not a foreign key: this layer does not know the dlq app. Empty for the
    # groups of a job that is gone (and of errors recorded without a job).
    job_id = models.BigIntegerField(null=True, blank=True, help_text="The job's id.")
    error_type = models.CharField(max_length=200)
    template = models.TextField(help_text="The message with its variable parts replaced.")
    last_message = models.TextField(help_text="The most recent raw message.")
    count = models.BigIntegerField(default=0, help_text="Occurrences ever recorded.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNRESOLVED)
    regressed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a resolved group last came back."
    )
    grouping_version = models.PositiveSmallIntegerField(
        default=GROUPING_VERSION, help_text="The version of the grouping rules that made it."
    )
    dlq_pending = models.BigIntegerField(
        "waiting in the DLQ",
        default=0,
        db_default=0,  # rows written by raw SQL or COPY (bench, imports) start at 0 too
        help_text="Its DLQ entries not resolved or discarded yet (kept by the DLQ as they change).",
    )

    class Meta:
        verbose_name = "error group"
        indexes = [
            # The DLQ health page's top errors of a job: the largest backlog first.
            models.Index(
                fields=["job_name", "dlq_pending", "count"], name="errgroup_job_backlog_idx"
            ),
            models.Index(
                fields=["job_id", "dlq_pending", "count"], name="errgroup_jobid_backlog_idx"
            ),
            models.Index(fields=["last_seen"], name="errgroup_last_seen_idx"),
            models.Index(fields=["job_name", "last_seen"], name="errgroup_job_seen_idx"),
            models.Index(fields=["status", "last_seen"], name="errgroup_status_seen_idx"),
        ]

    def __str__(self):
        return f"{self.job_name}: {self.error_type}: {self.template[:80]}"


class GroupKey(models.Model):
    """A fingerprint that leads to a group: the one it was made with, or another that was
    found to belong to it (the same errors under a newer version of the grouping rules).

    Failures are looked up here, so a group keeps its errors across an upgrade
    of the rules; the unique fingerprint makes two workers that find a new
    key at once store it once.
    """

    fingerprint = models.CharField(max_length=64, unique=True)
    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="keys")
    grouping_version = models.PositiveSmallIntegerField()
    template = models.TextField(help_text="The template the fingerprint was made from.")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "error group key"

    def __str__(self):
        return f"{self.fingerprint[:12]}… → group {self.group_id} (v{self.grouping_version})"


class ErrorOccurrence(models.Model):
    """The failures of one group with one message in one batch attempt on one node, counted,
    with where they happened, for the error history.

    One row a failure cost a storm of 1,000 failing records 1,000 rows (SPEC §3
    lets them be aggregated): now it is one row per distinct message. The raw
    message stays in the key, so regrouping, which keys each row by its message,
    still moves exact counts.
    """

    # (group, occurred_at) below serves the foreign key too.
    group = models.ForeignKey(
        ErrorGroup, on_delete=models.CASCADE, related_name="occurrences", db_index=False
    )
    occurred_at = models.DateTimeField()
    job_name = models.CharField(max_length=100)
    message = models.TextField()
    # A plain id, not a foreign key: this layer does not know the dlq app. No DLQ entry: a
    # row stands for many records; their entries are the batch's in the group.
    batch_id = models.BigIntegerField(null=True, blank=True)
    # No PositiveIntegerField: its CHECK made adding the column read the whole table locked.
    count = models.IntegerField(
        default=1,
        db_default=1,  # rows written by raw SQL or COPY (bench, imports) stand for one failure
        help_text="The failures it stands for.",
    )
    node_id = models.CharField(max_length=200, blank=True)
    node_name = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "error occurrence"
        indexes = [
            models.Index(fields=["group", "occurred_at"], name="erroccur_group_time_idx"),
            models.Index(fields=["occurred_at"], name="erroccur_time_idx"),
            models.Index(fields=["job_name", "occurred_at"], name="erroccur_job_time_idx"),
        ]

    def __str__(self):
        return (
            f"{self.job_name} at {self.occurred_at:%Y-%m-%d %H:%M:%S}: "
            f"{self.message[:80]} (×{self.count})"
        )


class ErrorTotal(models.Model):
    """Occurrences ever recorded per job: a stored counter that purging does not lower."""

    job_name = models.CharField(max_length=100, unique=True)
    occurrences = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "error total"

    def __str__(self):
        return f"{self.job_name}: {self.occurrences}"


class Grain(models.TextChoices):
    MINUTE = "m", "minute"  # kept a day only: the last hour's and six hours' charts read it
    HOUR = "h", "hour"
    DAY = "d", "day"
    WEEK = "w", "week"  # rollups only: ranking groups over a month reads whole weeks


# The unique keys of the bucketed counts, which their writes merge on.
ROLLUP_KEY = ("grain", "bucket", "group", "node_id", "region", "version")
VOLUME_KEY = ("grain", "bucket", "job_name", "node_id", "region", "version")


class BucketCount(models.Model):
    """A count of occurrences in one minute (hour, day, week) at one place (node, region,
    version)."""

    grain = models.CharField(max_length=1, choices=Grain.choices, default=Grain.HOUR)
    bucket = models.DateTimeField(
        help_text="The start of the minute, hour, day or week (Monday), in UTC."
    )
    job_name = models.CharField(max_length=100)
    node_id = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=100, blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class ErrorRollup(BucketCount):
    """Occurrences per minute, hour, day and week, group and place: what the error history
    reads.

    Counting raw occurrences on every view would grow with them; these rows
    grow with time buckets × groups × places. The last hour and six hours read
    minute rows (kept a day); up to a day, hourly rows; longer ranges read
    daily rows, 24 times fewer, and rank groups from whole weeks. All are added
    to (INSERT ... ON CONFLICT) in the transaction that records the occurrences.
    """

    Grain = Grain

    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="rollups")

    class Meta:
        verbose_name = "error rollup"
        constraints = [
            models.UniqueConstraint(fields=ROLLUP_KEY, name="errrollup_bucket_place_uniq"),
        ]
        indexes = [
            models.Index(fields=["grain", "bucket"], name="errrollup_bucket_idx"),
            models.Index(fields=["group", "grain", "bucket"], name="errrollup_group_bucket_idx"),
            models.Index(fields=["job_name", "grain", "bucket"], name="errrollup_job_bucket_idx"),
            models.Index(fields=["bucket"], name="errrollup_purge_idx"),
        ]

    def __str__(self):
        return f"{self.group_id} {self.grain} {self.bucket:%Y-%m-%d %H:00}: {self.count}"


class ErrorVolume(BucketCount):
    """Occurrences per minute, hour and day and place, all groups together: the history's
    totals.

    The chart's total line would otherwise add up every group's rollups in
    the window (hundreds of thousands of rows for a busy month); these rows
    grow with buckets × places only.
    """

    class Meta:
        verbose_name = "error volume"
        constraints = [
            models.UniqueConstraint(fields=VOLUME_KEY, name="errvolume_bucket_place_uniq"),
        ]
        indexes = [models.Index(fields=["bucket"], name="errvolume_purge_idx")]

    def __str__(self):
        return f"{self.job_name} {self.grain} {self.bucket:%Y-%m-%d %H:00}: {self.count}"


class ErrorPlace(models.Model):
    """A job, node, region or version errors came from, and when last: the history's filters.

    A handful of rows, so the filter menus never scan the rollups.
    """

    field = models.CharField(max_length=16)
    value = models.CharField(max_length=200)
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["field", "value"], name="errplace_field_value_uniq"),
        ]
        indexes = [models.Index(fields=["last_seen"], name="errplace_last_seen_idx")]

    def __str__(self):
        return f"{self.field}={self.value}"
