"""`regroup --job J [--rules FILE] [--dry-run]`: preview or apply grouping rules to a job's history.

With `--dry-run` it prints which groups would merge or split and how many
occurrences and pending DLQ entries would move, and changes nothing. Without
it, it applies the same plan in this process, with a progress bar: the rules
are put in force, then the history moves a chunk at a time. Without `--rules`
the job's own rules are applied again (after an upgrade of the built-in
rules, to bring old groups over). FILE is JSON (a list of rules) or TOML
(`[[grouping]]` tables, as in a jobs file).
"""

import json
import tomllib

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from dlq import regroup
from dlq.actors import Actor
from dlq.models import Job, RegroupRun


class Command(BaseCommand):
    help = (
        "Preview (--dry-run) or apply grouping rules to a job's error history: groups merge or "
        "split, occurrences and DLQ entries follow, with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--job", required=True, help="The job whose history to regroup.")
        parser.add_argument(
            "--rules", metavar="FILE", help="The rules: JSON, or TOML [[grouping]] tables."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say what would change; change nothing."
        )

    def handle(self, *args, job, rules, dry_run, **options):
        found = Job.objects.filter(name=job).first()
        if found is None:
            known = ", ".join(Job.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no job named {job!r} (known jobs: {known})")
        wanted = _read_rules(rules) if rules else found.grouping
        try:
            run = regroup.create_run(found, wanted, actor=Actor.shell(), dry_run=dry_run)
        except regroup.InvalidRegroup as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(
            unit=" rows",
            desc=f"regroup {found.name}",
            file=self.stderr._out,
            disable=dry_run or options["verbosity"] < 1,
        )

        def progress(current):
            bar.set_postfix(phase=current.phase, refresh=False)
            bar.n = current.moved_occurrences + current.moved_entries
            bar.refresh()

        try:
            regroup.execute_run(run.pk, progress=progress)
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted: regroup run {run.pk} stopped mid-way; a worker resumes it once its "
                "heartbeat is stale (the rules are in force already if it got past planning)."
            ) from None
        except DatabaseError as exc:
            raise CommandError(
                f"regroup run {run.pk} broke off: {exc}; a worker resumes it"
            ) from exc
        finally:
            bar.close()
        run.refresh_from_db()
        if run.status == RegroupRun.Status.FAILED:
            raise CommandError(f"regroup run {run.pk} failed: {run.error}")
        self.stdout.write("\n".join(regroup.report_lines(run)))


def _read_rules(path):
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if path.endswith(".toml"):
            document = tomllib.loads(text.decode("utf-8"))
            if set(document) - {"grouping"}:
                raise CommandError(f"{path}: the rules are [[grouping]] tables, nothing else")
            return document.get("grouping", [])
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(
            f"{path} is not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {exc}"
        ) from None
