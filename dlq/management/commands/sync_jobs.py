"""`sync_jobs FILE.toml`: create or update jobs from a jobs file, all or nothing.

A job's new grouping rules (`[[jobs.grouping]]`) are applied by a regroup run
in this process, which moves the job's history with them; with --dry-run the
run only previews what would merge, split and move.
"""

from django.core.management.base import BaseCommand, CommandError

from dlq import jobs_file, regroup
from dlq.actors import Actor
from dlq.models import Job, RegroupRun


class Command(BaseCommand):
    help = (
        "Create or update jobs by name from a TOML file of [[jobs]] tables. A key left out "
        "keeps the default on create and is left unchanged on update; dlq_max_size = 0 means "
        "unbounded. A bad file is refused whole."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A TOML file of [[jobs]] tables.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and show what would change, writing nothing.",
        )

    def handle(self, *args, file, dry_run, **options):
        try:
            results = jobs_file.apply(jobs_file.load(file), dry_run=dry_run)
        except jobs_file.JobsFileError as exc:
            problems = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise CommandError(f"{file} refused, no job was changed:\n{problems}") from None

        would = "would be " if dry_run else ""
        for result in results:
            line = f"{would}{result.action}: {result.name}"
            if result.action == "updated":
                line += f" ({_describe(result.changes)})"
            style = self.style.SUCCESS if result.action != "unchanged" else (lambda text: text)
            self.stdout.write(style(line))
        counts = {
            action: sum(r.action == action for r in results)
            for action in ("created", "updated", "unchanged")
        }
        summary = ", ".join(f"{n} {would}{action}" for action, n in counts.items())
        self.stdout.write(f"{len(results)} job(s) in {file}: {summary}.")
        for result in results:
            if result.regroup is not None:
                self._regroup(result.name, result.regroup, dry_run)

    def _regroup(self, name, rules, dry_run):
        """Apply (or preview) a job's new grouping rules with a regroup run, here and now."""
        job = Job.objects.get(name=name)
        try:
            run = regroup.create_run(job, rules, actor=Actor.shell(), dry_run=dry_run)
        except regroup.InvalidRegroup as exc:
            raise CommandError(
                f"job {name!r}: the grouping rules were not applied: {exc}"
            ) from None
        regroup.execute_run(run.pk)
        run.refresh_from_db()
        if run.status != RegroupRun.Status.FINISHED:
            raise CommandError(f"job {name!r}: regroup run {run.pk} {run.status}: {run.error}")
        self.stdout.write("\n".join(regroup.report_lines(run)))


def _describe(changes):
    """`max_retries 3 -> 2, config changed`: what an update changes, config kept short."""
    parts = []
    for key, (old, new) in changes.items():
        if isinstance(old, dict | list) or isinstance(new, dict | list):
            parts.append(f"{key} changed")
        else:
            parts.append(f"{key} {_shown(old)} -> {_shown(new)}")
    return ", ".join(parts)


def _shown(value):
    return "unbounded" if value is None else repr(value) if isinstance(value, str) else str(value)
