"""`ensure_superuser`: the first superuser, with a generated password (`make run`).

Without `--password-file` the password is printed once and kept nowhere. With
it (as `make run` does, var/admin-password) the password is also written to
that file, readable by its owner only, and every later run prints the login
again while the file still holds the user's password: the set-up's last lines
say how to log in, however many log lines came before.
"""

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

RULE = "=" * 64


class Command(BaseCommand):
    help = (
        "Create a superuser with a generated password if there is none and print the password; "
        "with --password-file, keep it there (mode 600) and print the login again later."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Name of the superuser to create.")
        parser.add_argument(
            "--password-file",
            type=Path,
            help="Keep the generated password in this file (owner read/write only).",
        )

    def handle(self, *args, username, password_file, **options):
        users = get_user_model()._default_manager
        existing = users.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self._remind(existing, password_file)
            return
        if users.filter(**{get_user_model().USERNAME_FIELD: username}).exists():
            # Promoting an ordinary account behind the operator's back would be a surprise.
            raise CommandError(
                f"user {username!r} exists but is not a superuser; pick another --username, "
                "or run python manage.py createsuperuser"
            )
        password = secrets.token_urlsafe(16)
        users.create_superuser(**{get_user_model().USERNAME_FIELD: username, "password": password})
        if password_file:
            _keep(password_file, password)
            kept = f"  Kept in {password_file} (readable by you only)."
        else:
            kept = "  The password is shown only this once."
        self._banner("Velo superuser created.", username, password, kept)

    def _remind(self, user, password_file):
        name = user.get_username()
        change = f"To set a new one: python manage.py changepassword {name}"
        stored = _read(password_file) if password_file else None
        if stored and user.check_password(stored):
            self._banner("Log in to Velo:", name, stored, f"  (from {password_file}) {change}")
            return
        self.stdout.write(
            f"Superuser {name!r} exists; its password was shown when it was created.\n{change}"
        )

    def _banner(self, heading, username, password, note):
        self.stdout.write(
            "\n".join(
                [
                    RULE,
                    f"  {heading}",
                    "",
                    f"    username: {username}",
                    f"    password: {password}",
                    "",
                    note,
                    RULE,
                ]
            )
        )


def _keep(path, password):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that existed keeps its old mode otherwise
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")


def _read(path):
    try:
        return path.read_text().strip()
    except OSError:
        return None
