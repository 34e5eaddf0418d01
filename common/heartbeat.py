"""A thread that renews a lease while long work runs, on a database connection of its own."""

import logging
import threading

from django.db import DatabaseError, connection

log = logging.getLogger(__name__)

# A lease is renewed when a third of it has gone by: two renewals can fail
# (a database hiccup) before it runs out.
RENEW_SHARE = 1 / 3


class Renewer:
    """Calls `renew()` every `interval` seconds from a thread of its own while work runs.

    The thread has its own database connection, so a renewal commits even
    while the work holds a long transaction open (a transactional processor on
    PostgreSQL); on SQLite it waits its turn for the write lock. `renew`
    returning False (the claim is gone) ends the renewals.
    """

    def __init__(self, renew, interval, name):
        self.renew, self.interval, self.name = renew, interval, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"velo-{name}", daemon=True)

    @classmethod
    def for_lease(cls, renew, lease_seconds, name):
        """Renewals of a lease of `lease_seconds`, each a third of it apart."""
        return cls(renew, lease_seconds * RENEW_SHARE, name)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self.renew():
                        log.warning("%s: claim lost; no more renewals", self.name)
                        return
                except DatabaseError as exc:  # try again at the next beat
                    log.warning("%s: could not renew: %s", self.name, exc)
        finally:
            connection.close()
