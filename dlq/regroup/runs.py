"""A regroup run's lifecycle: created and audited, planned, put in force, moved in chunks, done.

A preview (dry run) only plans, and keeps the plan's report: which groups
would merge or split, how many occurrences and pending DLQ entries would move.
Applying plans again (history may have grown since the preview), then in one
transaction makes the new groups, points every key at its group and puts the
rules in force on the job, so new failures land where history is going. Then
it moves the job's occurrences and DLQ entries a chunk at a time, each chunk
in one transaction with the run's cursor: a run whose worker died is queued
again by the beat tick and resumes at its phase and cursor. Moving twice moves
nothing twice. Last, the groups left without a part are folded into theirs.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from common.heartbeat import Renewer
from common.outage import DATABASE_AWAY, when_database_returns
from errors import regroup as history
from errors.models import ErrorGroup
from errors.rules import InvalidRules, Rules

from .. import audit, dispatch, liveness
from ..models import Job, OperatorAction, RegroupRun
from . import entries

log = logging.getLogger(__name__)
Phase = RegroupRun.Phase
# The groups a rule is checked against when it is saved: a rule that matches
# none of a job's recent errors is most likely a typo.
CHECKED_GROUPS = 10_000


class InvalidRegroup(ValueError):
    """A regroup that cannot start, with what is wrong."""


def checked_rules(job, rules):
    """`rules` compiled; InvalidRegroup for a bad rule or one that matches none of the job's
    error groups (when the job has some)."""
    try:
        compiled = Rules.parse(rules)
    except InvalidRules as exc:
        raise InvalidRegroup(str(exc)) from None
    groups = list(
        ErrorGroup.objects.filter(job_id=job.pk)
        .order_by("-last_seen")
        .values_list("error_type", "last_message")[:CHECKED_GROUPS]
    )
    if groups and compiled:
        matched = set()
        for error_type, message in groups:
            matched |= compiled.matching(error_type, message)
        unmatched = sorted(compiled.numbers - matched)
        if unmatched:
            raise InvalidRegroup(
                f"rule {', '.join(map(str, unmatched))} matches none of the {len(groups)} "
                f"error groups of job {job.name}: check the pattern"
            )
    return compiled


def create_run(job, rules, *, actor, dry_run=False, groups=None):
    """A regroup run of `job`'s history under `rules` (a preview with dry_run), audited.

    `groups`: regroup only these groups, ignoring their keys: split merged
    groups back into their parts (the rules are then the job's own).
    """
    checked_rules(job, rules)
    with transaction.atomic():
        if not dry_run:
            running = RegroupRun.objects.filter(
                job=job, dry_run=False, status__in=RegroupRun.ACTIVE
            ).first()
            if running is not None:
                raise InvalidRegroup(
                    f"regroup run {running.pk} of job {job.name} is still {running.status}"
                )
        run = RegroupRun.objects.create(
            job=job,
            rules=rules,
            dry_run=dry_run,
            groups=sorted(groups) if groups is not None else None,
            created_by=actor.name,
        )
        audit.record(
            OperatorAction.Action.REGROUP,
            actor=actor,
            target=_describe(run),
            dry_run=dry_run,
            outcome="started",
            details={"rules": rules, **({"groups": run.groups} if groups is not None else {})},
            regroup_run=run,
        )
    return run


def start_run(job, rules, *, actor, dry_run=False, groups=None):
    """Create a run and send it to a worker once it is committed."""
    with transaction.atomic():
        run = create_run(job, rules, actor=actor, dry_run=dry_run, groups=groups)
        dispatch.send_regroup_run_on_commit(run.pk)
    return run


def unmerge(group, *, actor):
    """Split a group back into its parts by template, in the background; return the run."""
    job = Job.objects.filter(pk=group.job_id).first() if group.job_id is not None else None
    if job is None:
        raise InvalidRegroup("its job is gone: there are no rules to split it by")
    return start_run(job, job.grouping, actor=actor, groups=[group.pk])


def execute_run(run_id, *, progress=None):
    """Work a run through to its end (the Celery task's body); return it, or None if not queued.

    `progress(run)` is called after every chunk (the shell's progress bar).
    """
    now = timezone.now()
    claimed = RegroupRun.objects.filter(pk=run_id, status=RegroupRun.Status.QUEUED).update(
        status=RegroupRun.Status.RUNNING,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), Value(now)),
        **liveness.claim_fields(now),
    )
    if not claimed:
        log.info("regroup run %s: not queued; nothing to do", run_id)
        return None
    run = RegroupRun.objects.select_related("job").get(pk=run_id)
    with Renewer.for_lease(
        lambda: _renew(run), settings.VELO_REQUEUE_CLAIM_SECONDS, f"regroup run {run_id}"
    ):
        try:
            _work(run, progress or (lambda run: None))
        except DATABASE_AWAY:
            # Queued again once the database answers, to resume at its phase and cursor
            # (if it never does in time, a stale heartbeat gets it queued again); only
            # while this process is still its holder, never another worker's claim.
            when_database_returns(
                lambda: _held(run).update(status=RegroupRun.Status.QUEUED, dispatched_at=None),
                f"regroup run {run_id}",
            )
            raise
        except DatabaseError:
            raise  # the run stays running; once its heartbeat is stale it is queued again
        except LostRun as exc:
            log.warning("%s; leaving it to its new holder", exc)
            return None
        except Exception as exc:
            log.exception("regroup run %s failed", run_id)
            _end(run, RegroupRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
    return run


class LostRun(Exception):
    """This execution no longer holds its run: it was handed to another worker."""


def _held(run):
    """The run while this execution holds it. Its claim time names the claim: recovery
    queues the run again and the next claim gives it a new one, so an old execution,
    should it still run, changes nothing."""
    return RegroupRun.objects.filter(
        pk=run.pk, status=RegroupRun.Status.RUNNING, claimed_at=run.claimed_at
    )


def _renew(run):
    return bool(_held(run).update(heartbeat_at=timezone.now()))


def _work(run, progress):
    rules = Rules.parse(run.rules)
    job = run.job
    if run.phase == Phase.PLAN:
        plan = history.plan(
            job.name,
            rules,
            job_id=job.pk,
            job_key=job.error_key,
            extra=entries.stored_messages(job),
            only_groups=run.groups,
            ignore_keys_of=run.groups or (),
        )
        if run.dry_run:
            run.report, run.phase = plan["report"], Phase.DONE
            _save(run, "report", "phase")
            return _end(run, RegroupRun.Status.FINISHED, _summary(plan["report"], preview=True))
        with transaction.atomic():
            history.prepare(plan, now=timezone.now())
            if run.groups is None:
                job.grouping = run.rules
                job.save(update_fields=["grouping", "updated_at"])
            run.plan, run.report, run.phase, run.cursor = plan, plan["report"], Phase.OCCURRENCES, 0
            _save(run, "plan", "report", "phase", "cursor")
        progress(run)

    size = settings.VELO_REGROUP_CHUNK

    def move_occurrences(plan, rules, after):
        return history.move_occurrences(plan, rules, after, size=size)

    def move_entries(plan, rules, after):
        return entries.move(plan, rules, job, after, size=size)

    for phase, move, counter, following in (
        (Phase.OCCURRENCES, move_occurrences, "moved_occurrences", Phase.ENTRIES),
        (Phase.ENTRIES, move_entries, "moved_entries", Phase.FINISH),
    ):
        while run.phase == phase:
            with transaction.atomic():
                moved, last = move(run.plan, rules, run.cursor)
                if last is None:
                    run.phase, run.cursor = following, 0
                else:
                    run.cursor = last
                setattr(run, counter, getattr(run, counter) + moved)
                _save(run, "phase", "cursor", counter)
            progress(run)
    if run.phase == Phase.FINISH:
        with transaction.atomic():
            folded = {int(g): run.plan["targets"][fp] for g, fp in run.plan["absorbed"].items()}
            for group_id, into in folded.items():
                run.moved_entries += entries.fold([group_id], into)
            history.finish(run.plan, now=timezone.now())
            run.phase = Phase.DONE
            _save(run, "phase", "moved_entries")
            _end(run, RegroupRun.Status.FINISHED, _summary(run.report, preview=False))
        progress(run)


def _save(run, *fields):
    """Store the run's progress, inside the chunk's transaction: if the run is no longer
    this execution's, raise LostRun, and the chunk rolls back with it."""
    run.heartbeat_at = timezone.now()
    if not _held(run).update(heartbeat_at=run.heartbeat_at, **{f: getattr(run, f) for f in fields}):
        raise LostRun(f"regroup run {run.pk} was handed to another worker")


def _end(run, status, outcome):
    run.status, run.finished_at = status, timezone.now()
    if status == RegroupRun.Status.FAILED:
        run.error = outcome
    if not _held(run).update(status=status, finished_at=run.finished_at, error=run.error):
        raise LostRun(f"regroup run {run.pk} was handed to another worker")
    OperatorAction.objects.filter(regroup_run=run, action=OperatorAction.Action.REGROUP).update(
        outcome=outcome[:2000], count=run.report["moved_occurrences"] if run.report else 0
    )
    log.info("regroup run %s %s: %s", run.pk, status, outcome)
    return run


def _summary(report, *, preview):
    verb = "would move" if preview else "moved"
    return (
        f"{report['groups_before']} groups → {report['groups_after']}: "
        f"{len(report['merges'])} merges, {len(report['splits'])} splits, "
        f"{report['new_groups']} new; {verb} {report['moved_occurrences']} occurrences and "
        f"{report['moved_pending_entries']} pending DLQ entries"
    )


def _describe(run):
    if run.groups is not None:
        return f"error groups {', '.join(map(str, run.groups))} of job {run.job.name}"[:200]
    return f"the error groups of job {run.job.name}"


def recover_stalled_runs(now=None):
    """A running regroup whose worker died (dlq.liveness) or stopped answering is queued
    again, to resume."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.VELO_REQUEUE_CLAIM_SECONDS)
    running = RegroupRun.objects.filter(status=RegroupRun.Status.RUNNING)
    dead = liveness.lost_claims(running.values_list("pk", *liveness.HOLDER_FIELDS), now)
    return running.filter(Q(heartbeat_at__lt=stale) | Q(pk__in=dead)).update(
        status=RegroupRun.Status.QUEUED, dispatched_at=None
    )


def report_lines(run):
    """A finished run's report in words, a line a merge or a split part (for the shell)."""
    report = run.report
    head = "Would regroup" if run.dry_run else "Regrouped"
    lines = [
        f"{head} job {run.job.name} (run {run.pk}): {report['groups_before']} groups → "
        f"{report['groups_after']}; {report['moved_occurrences']} occurrences and "
        f"{report['moved_pending_entries']} pending DLQ entries "
        f"{'would move' if run.dry_run else 'moved'}."
    ]
    for merge in report["merges"]:
        lines.append(f"  merge into {_where(merge['into'])}: {merge['template'][:80]}")
        lines += [f"    #{group['id']} {group['template'][:80]}" for group in merge["groups"]]
    for split in report["splits"]:
        lines.append(f"  split #{split['group']} {split['template'][:80]}")
        lines += [
            f"    {part['occurrences']:>8} occurrences, {part['pending_entries']} pending → "
            f"{_where(part['to'])}: {part['template'][:80]}"
            for part in split["parts"]
        ]
    return lines


def _where(target):
    return "a new group" if target == "new" else f"#{target}"
