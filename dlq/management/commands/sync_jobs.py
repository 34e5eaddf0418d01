"""`sync_jobs FILE.toml`: create or update jobs from a jobs file, all or nothing."""

from django.core.management.base import BaseCommand, CommandError

from dlq import jobs_file


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
