"""Claiming a requeue run's next chunk while the current one is being worked on.

A chunk's claim is one UPDATE the database works through while Python waits
(about half of a requeue's time), and working a chunk is mostly Python. On
a connection of its own, in a thread of its own, the next claim runs beside
the current chunk, so the database's core and Python's are busy at once.

Only on PostgreSQL (SQLite has one writer at a time), and only when the run
is not inside a caller's transaction, whose rows another connection could
not see.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

log = logging.getLogger(__name__)


def _close_connection():
    """Close the calling thread's own connection (looked up here, in that thread)."""
    connection.close()


class ClaimAhead:
    """`claim_chunk(after, size)` -> (ids, entries, size) in a thread; `release(ids)` undoes it."""

    def __init__(self, claim_chunk, release):
        self._claim_chunk, self._release = claim_chunk, release
        usable = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="velo-claim") if usable else None
        self._future = None

    def start(self, after, size):
        """Begin claiming the `size` entries after id `after`, if this run can."""
        if self._pool:
            self._future = self._pool.submit(self._claim_chunk, after, size)

    def take(self):
        """The chunk claimed ahead, waiting for it if need be; None when none was started."""
        future, self._future = self._future, None
        return future.result() if future else None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # Entries claimed ahead but never worked on go back to pending now,
        # rather than when their claim runs out.
        try:
            chunk = self.take()
            if chunk and chunk[0]:
                self._release(chunk[0])
        except Exception:
            log.exception("a chunk claimed ahead could not be handed back; its claims will run out")
        finally:
            if self._pool:
                try:
                    self._pool.submit(_close_connection).result()
                finally:
                    self._pool.shutdown()
