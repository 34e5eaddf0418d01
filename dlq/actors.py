"""Who acted, and through which door: the one identity every operator action is recorded with."""

import getpass
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """`name` is what the audit trail and a requeue run show ("alice", "api:ingest",
    "cli:root"); `via` is the door ("admin", "api" or "shell"); `user` is the
    Django user behind it, when there is one."""

    name: str
    via: str
    user: Any = None

    @classmethod
    def of_user(cls, user, via="admin"):
        return cls(user.get_username(), via, user)

    @classmethod
    def from_request(cls, request):
        """The operator logged in to the admin."""
        return cls.of_user(request.user)

    @classmethod
    def api(cls, token):
        """A script calling the HTTP API with `token`."""
        return cls(f"api:{token.name}", "api")

    @classmethod
    def shell(cls):
        """Whoever runs a management command, by their login name."""
        try:
            return cls(f"cli:{getpass.getuser()}", "shell")
        except (KeyError, OSError, ImportError):  # no login name (a container without one)
            return cls("cli", "shell")

    @property
    def db_user(self):
        """The user to link a row to: none for tokens, shells and unsaved users."""
        return self.user if self.user is not None and self.user.pk else None
