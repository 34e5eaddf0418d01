"""create_api_token: make an API token and print it, once, alone on the last line (for scripts)."""

from django.core.management.base import BaseCommand, CommandError

from dlq.actors import Actor
from dlq.models import Job
from dlq.tokens import create_token


class Command(BaseCommand):
    help = "Create an API token. It is printed once, alone on the last line, and never stored."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Who or what the token is for.")
        parser.add_argument(
            "--job",
            dest="jobs",
            action="extend",
            nargs="+",
            default=[],
            metavar="JOB",
            help="Limit the token to these jobs (repeatable). Without it: every job.",
        )
        parser.add_argument(
            "--can-requeue", action="store_true", help="Allow the token to start requeues."
        )

    def handle(self, *args, name, jobs, can_requeue, **options):
        wanted = sorted(set(jobs))
        found = list(Job.objects.filter(name__in=wanted))
        unknown = sorted(set(wanted) - {job.name for job in found})
        if unknown:
            raise CommandError(f"Unknown job(s): {', '.join(unknown)}")
        try:
            token, plaintext = create_token(
                name,
                jobs=found if wanted else None,  # None: every job
                can_requeue=can_requeue,
                actor=Actor.shell(),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        scope = f"job(s) {', '.join(wanted)}" if wanted else "every job"
        requeue = "may" if can_requeue else "may not"
        self.stdout.write(f"Created API token {token.name!r} ({token.prefix}…) for {scope}.")
        self.stdout.write(f"It {requeue} start requeues. Store it now: it is not shown again.")
        self.stdout.write(plaintext)
