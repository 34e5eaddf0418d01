"""Readiness checks: small objects with one run() that raises CheckFailed; the caller owns timeouts.

Each check runs in a thread with a deadline, so a database or broker that
hangs makes the probe answer "not ready" in time instead of hanging with it.
"""

import logging
import threading
from dataclasses import dataclass

from django.db import DatabaseError, connections
from kombu.exceptions import OperationalError as BrokerError

from .celery import app

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2.0


class CheckFailed(Exception):
    """A dependency is not usable; the message is safe to show."""


class DatabaseCheck:
    name = "database"

    def run(self):
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
                answer = cursor.fetchone()
        except DatabaseError as exc:
            # The driver's text names hosts and users: the probe is open, so it says less.
            log.warning("database check failed: %r", exc)
            raise CheckFailed(f"database unreachable ({type(exc).__name__})") from None
        if answer != (1,):
            raise CheckFailed("unexpected answer to SELECT 1")
        return "SELECT 1 answered"


class BrokerCheck:
    name = "broker"

    def run(self):
        with app.connection_for_write(connect_timeout=TIMEOUT_SECONDS) as conn:
            # One try, no retry (max_retries=1 would sleep 2 s before a second
            # one): a probe must answer, not wait for a broker.
            try:
                conn.ensure_connection(max_retries=0, timeout=TIMEOUT_SECONDS)
            except (BrokerError, *conn.connection_errors) as exc:
                log.warning("broker check failed: %r", exc)
                raise CheckFailed(f"broker unreachable ({type(exc).__name__})") from None
            transport = conn.transport_cls
        return f"{transport} broker reachable"


@dataclass
class CheckResult:
    name: str
    ready: bool
    message: str

    def as_json(self):
        return {"name": self.name, "ready": self.ready, "message": self.message}


def _run_with_deadline(check):
    outcome = {}

    def target():
        try:
            outcome["message"] = check.run()
        except CheckFailed as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # anything else: name its type, keep internals out
            log.warning("%s check failed: %r", check.name, exc)
            outcome["error"] = f"{type(exc).__name__}: unavailable"
        finally:
            if check.name == "database":
                connections.close_all()

    thread = threading.Thread(target=target, name=f"check-{check.name}", daemon=True)
    thread.start()
    thread.join(TIMEOUT_SECONDS + 1.0)
    if thread.is_alive():
        return CheckResult(check.name, False, f"no answer within {TIMEOUT_SECONDS:.0f}s")
    if "error" in outcome:
        return CheckResult(check.name, False, outcome["error"])
    return CheckResult(check.name, True, outcome["message"])


def run_checks():
    """Both checks, in parallel threads; each result says ready or why not."""
    checks = [DatabaseCheck(), BrokerCheck()]
    results = [None] * len(checks)

    def run(i, check):
        results[i] = _run_with_deadline(check)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(checks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
