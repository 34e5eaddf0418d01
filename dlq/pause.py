"""Pausing a job: its batches are taken and kept, not processed, until it resumes at a pace.

A paused job still takes submissions (stored, 202), but they are not sent at
submission, the dispatcher does not send them (dlq.sweep), and no worker claims
them (dlq.engine.lease): a message already at the broker finds nothing to do
and leaves its batch queued, to be sent again later. Retries that fall due
meanwhile wait the same way. A batch already running finishes its attempt.

Resume starts a *release*: beat's tick sends the batches that waited, oldest
first, at most `rate` batches a second (None: as many as a tick sends), new
submissions queued behind them, until none waits; then the job's batches are
sent at submission again. The release is kept in the job's row, not at the
broker, so a broker outage or a restart loses none of it: what a tick could
not send, a later tick sends.
"""

import math

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from . import audit, dispatch
from .actors import Actor
from .models import Batch, Job, OperatorAction

# Resume rates an operator may choose, in batches a second.
MIN_RATE = 0.01
MAX_RATE = 1000.0
# How far a release's schedule may fall behind (the dispatcher or the broker was away) and
# still make it up; further behind, it goes on at its rate rather than bursting.
CREDIT_SECONDS = 2.0
WAITING = (Batch.Status.QUEUED, Batch.Status.RETRYING)


class InvalidRate(ValueError):
    """A resume rate out of bounds."""


def holds_batches(job) -> bool:
    """The job's batches are not sent as they come: it is paused, or a release sends them."""
    return job.paused_at is not None or job.release_started_at is not None


def running_jobs() -> Q:
    """Batches (a Batch filter) whose job sends them as they come.

    The held jobs are read first (a few rows), so that while none is paused the
    dispatcher's query over batches is the one it always was, with no join.
    """
    held = list(
        Job.objects.filter(
            Q(paused_at__isnull=False) | Q(release_started_at__isnull=False)
        ).values_list("pk", flat=True)
    )
    return ~Q(job_id__in=held) if held else Q()


def pause(job: Job, actor: Actor) -> bool:
    """Pause `job` (a release in progress stops with it); False when it was paused already."""
    now = timezone.now()
    with transaction.atomic():
        changed = Job.objects.filter(pk=job.pk, paused_at__isnull=True).update(
            paused_at=now, release_started_at=None, release_rate=None, release_paced=0
        )
        if changed:
            audit.record(
                OperatorAction.Action.PAUSE,
                actor=actor,
                target=f"job {job.name}",
                outcome="paused",
                details={"waiting": _waiting(job).count()},
            )
    return bool(changed)


def resume(job: Job, actor: Actor, rate: float | None = None) -> bool:
    """Resume `job`: what waited is sent oldest first at `rate` batches a second (None: no
    limit) by the dispatcher. False when it was not paused."""
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidRate(f"a resume rate is {MIN_RATE:g} to {MAX_RATE:g} batches a second")
    now = timezone.now()
    with transaction.atomic():
        changed = Job.objects.filter(pk=job.pk, paused_at__isnull=False).update(
            paused_at=None, release_started_at=now, release_rate=rate, release_paced=0
        )
        if changed:
            waiting = _waiting(job).count()
            audit.record(
                OperatorAction.Action.RESUME,
                actor=actor,
                target=f"job {job.name}",
                count=waiting,
                outcome=f"resumed: {waiting} waiting batches sent at "
                + (f"{rate:g} a second" if rate else "no limit"),
                details={"rate": rate, "waiting": waiting},
            )
    return bool(changed)


def waiting_batches(jobs) -> dict:
    """{job id: batches waiting} of the jobs among `jobs` that hold their batches back: one
    (job, status) index read, over paused and resuming jobs only."""
    held = [job.pk for job in jobs if holds_batches(job)]
    if not held:
        return {}
    return dict(
        Batch.objects.filter(job_id__in=held, status__in=WAITING)
        .values_list("job_id")
        .annotate(n=Count("pk"))
        .values_list("job_id", "n")
    )


def _waiting(job):
    return Batch.objects.filter(job_id=job.pk, status__in=WAITING)


def release_due(now, stale, limit):
    """One tick of every release: send what each may send now; return how many were sent.

    `stale` is the dispatcher's filter of rows with no message on its way. A release
    ends once a tick finds fewer waiting than it may send.
    """
    sent = 0
    releasing = Job.objects.filter(paused_at__isnull=True, release_started_at__isnull=False)
    for job in releasing:
        allowed, paced = _allowed(job, now, limit)
        ids = list(
            _waiting(job)
            .filter(stale, Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("pk")
            .values_list("pk", flat=True)[:allowed]
        )
        done = len(ids) < allowed
        sent_now = dispatch.send_rows(Batch, ids)
        # Only the release this tick read: a pause or another resume meanwhile is left alone.
        this_release = Job.objects.filter(
            pk=job.pk, paused_at__isnull=True, release_started_at=job.release_started_at
        )
        if done:
            this_release.update(release_started_at=None, release_rate=None, release_paced=0)
        else:
            this_release.update(release_paced=F("release_paced") + paced + len(sent_now))
        sent += len(sent_now)
    return sent


def _allowed(job, now, limit):
    """(how many batches the release may send now, schedule skipped) at its rate.

    Batch n (from 0) is due `n / rate` seconds after the resume. A schedule further
    behind than CREDIT_SECONDS skips the time lost (the skip is counted as used).
    """
    if job.release_rate is None:
        return limit, 0
    elapsed = (now - job.release_started_at).total_seconds()
    due = math.floor(job.release_rate * max(elapsed, 0.0)) + 1
    credit = max(1, math.ceil(job.release_rate * CREDIT_SECONDS))
    behind = due - job.release_paced
    skipped = max(0, behind - credit)
    return max(0, min(behind - skipped, limit)), skipped
