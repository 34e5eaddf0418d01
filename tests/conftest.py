"""Shared fixtures: jobs and batches built the way the product builds them."""

import itertools

import pytest

from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, Job

_names = itertools.count()


@pytest.fixture
def login(db, django_user_model):
    """A client logged in as a new staff user with exactly these permissions ("app.codename"),
    or a superuser."""
    from django.contrib.auth.models import Permission
    from django.test import Client

    def make(*perms, superuser=False):
        name = f"user{next(_names)}"
        if superuser:
            user = django_user_model.objects.create_superuser(name, f"{name}@example.com", "pw")
        else:
            user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def make_job(db):
    def make(name="orders", **fields):
        fields.setdefault("processor", "demo.trades")
        return Job.objects.create(name=name, **fields)

    return make


@pytest.fixture
def run_batch():
    """Submit records and drive the engine until the batch stops retrying (no broker, no waits)."""

    def run(job, records, *, max_attempts=50):
        batch, _ = submit_batch(job, records)
        for _ in range(max_attempts):
            Batch.objects.filter(pk=batch.pk).update(next_attempt_at=None)
            process_batch(batch.pk)
            batch.refresh_from_db()
            if batch.status not in Batch.IN_FLIGHT:
                return batch
        return batch

    return run


GOOD = {"symbol": "ACME", "price": 10.5}
BAD = {"price": 1}


def occurrences(**filters):
    """The failures the occurrences count (a row counts those of one batch attempt with one
    message), not their rows."""
    from django.db.models import Sum

    from errors.models import ErrorOccurrence

    return ErrorOccurrence.objects.filter(**filters).aggregate(n=Sum("count"))["n"] or 0


@pytest.fixture(scope="session", autouse=True)
def _remove_test_broker_folder():
    """The filesystem broker folder of this run (settings_test) goes when the run ends."""
    yield
    import shutil

    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        shutil.rmtree(settings.BROKER_DIR, ignore_errors=True)


@pytest.fixture
def silent_server():
    """A loopback TCP server that accepts connections and never sends a byte; its port."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()
