"""Fixtures for tests that run real workers and talk HTTP to a real server."""

import pytest
import requests

from dlq.models import Batch
from dlq.tokens import create_token

from .harness import Worker, wait_for

FINAL = {"succeeded", "partial", "failed"}


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A real Celery worker with beat, against the test database and the configured broker."""
    started = Worker(tmp_path, VELO_BATCH_LEASE_SECONDS=3, VELO_REQUEUE_CLAIM_SECONDS=3).start()
    yield started
    started.stop()
    print(f"--- worker log (tail)\n{started.log()[-4000:]}")


@pytest.fixture
def api(live_server, transactional_db):
    """An HTTP client for the live server, with a token for every job."""
    _, token = create_token("integration tests", can_requeue=True)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    class Api:
        url = live_server.url

        def submit(self, job, records, **kwargs):
            response = session.post(f"{self.url}/api/v1/jobs/{job}/batches", json=records, **kwargs)
            assert response.status_code == 202, response.text
            return response.json()

        def batch(self, batch_id):
            response = session.get(f"{self.url}/api/v1/batches/{batch_id}")
            assert response.status_code == 200, response.text
            return response.json()

        def wait_until_final(self, batch_id, timeout=60):
            return wait_for(
                lambda: (b := self.batch(batch_id))["status"] in FINAL and b,
                timeout=timeout,
                interval=0.2,
                what=f"batch {batch_id} to finish",
            )

    return Api()


def wait_for_status(batch_id, statuses, timeout=30):
    return wait_for(
        lambda: Batch.objects.filter(pk=batch_id, status__in=statuses).first(),
        timeout=timeout,
        what=f"batch {batch_id} to reach {statuses}",
    )
