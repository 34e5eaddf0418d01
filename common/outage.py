"""One small write that must happen even if the database is away for a moment.

When the database restarts (or fails over) under a worker, the work in hand fails; what
the worker must still do is hand that work back, so it is picked up again in seconds
rather than when its lease runs out. That one write is tried again, on a new connection,
until the database answers or the patience runs out (then the lease is the backstop).
"""

import logging
import time

from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

# The errors of a database that is away (down, restarting, the connection cut), as
# opposed to ones that would come back on every try (an IntegrityError, a DataError).
DATABASE_AWAY = (OperationalError, InterfaceError)
PATIENCE_SECONDS = 60.0
MAX_DELAY = 5.0


def when_database_returns(write, what, patience=PATIENCE_SECONDS):
    """Call `write()` until it succeeds or `patience` seconds pass; True if it was done.

    Inside a transaction (a test's, or a caller's) it is tried once: the connection is
    not ours to drop.
    """
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            write()
            return True
        except DatabaseError as exc:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                log.warning("%s: could not be handed back (%s); its lease will", what, exc)
                return False
            log.info("%s: database unavailable (%s); handing back in %.1f s", what, exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
