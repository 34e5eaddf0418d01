"""`ensure_superuser`: the first superuser, with a generated password shown once (`make run`)."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a superuser with a generated password if there is none, and print the password "
        "once. Does nothing when a superuser exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Name of the superuser to create.")

    def handle(self, *args, username, **options):
        users = get_user_model()._default_manager
        existing = users.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            name = existing.get_username()
            self.stdout.write(
                f"Superuser {name!r} exists; its password was shown when it was created.\n"
                f"To set a new one: python manage.py changepassword {name}"
            )
            return
        if users.filter(**{get_user_model().USERNAME_FIELD: username}).exists():
            # Promoting an ordinary account behind the operator's back would be a surprise.
            raise CommandError(
                f"user {username!r} exists but is not a superuser; pick another --username, "
                "or run python manage.py createsuperuser"
            )
        password = secrets.token_urlsafe(16)
        users.create_superuser(**{get_user_model().USERNAME_FIELD: username, "password": password})
        rule = "=" * 64
        self.stdout.write(
            "\n".join(
                [
                    rule,
                    "  Velo superuser created. The password is shown only this once:",
                    "",
                    f"    username: {username}",
                    f"    password: {password}",
                    "",
                    f"  To change it later: python manage.py changepassword {username}",
                    rule,
                ]
            )
        )
