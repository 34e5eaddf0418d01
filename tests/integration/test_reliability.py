"""Crashes, redeliveries and broker outages: nothing lost, nothing counted twice."""

import os
import threading
import time

import pytest
import requests
from django.db import connection

from devtools.services import ScratchRedis
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import Batch, DLQEntry, Job, JobCounters
from dlq.tasks import process_batch_task
from dlq.tokens import create_token
from tests.conftest import BAD, GOOD

from .conftest import wait_for_status
from .harness import WebServer, Worker, free_port, wait_for

pytestmark = pytest.mark.worker


def test_the_same_batch_delivered_twice_counts_once(worker, api):
    Job.objects.create(name="twice", processor="test.fails_on", failure_strategy="send_to_dlq")
    batch_id = api.submit("twice", [{"fail": True}, {}, {"fail": True}])["batch_id"]
    # Two more deliveries of the same task, and the engine run in this process at once.
    process_batch_task.delay(batch_id)
    process_batch_task.delay(batch_id)
    threading.Thread(target=process_batch, args=(batch_id,)).start()
    api.wait_until_final(batch_id)
    time.sleep(2)  # let the extra deliveries arrive and find nothing to do
    c = JobCounters.objects.get(job__name="twice")
    assert (c.records_processed, c.records_failed, c.dlq_added, c.batches_partial) == (3, 2, 2, 1)
    assert DLQEntry.objects.count() == 2
    assert Batch.objects.get(pk=batch_id).attempts == 1


def test_a_worker_killed_mid_batch_loses_nothing_and_counts_once(worker, api, tmp_path):
    Job.objects.create(
        name="slow", processor="demo.slow", config={"seconds": 0.3}, failure_strategy="send_to_dlq"
    )
    batch_id = api.submit("slow", [{"n": i} for i in range(10)])["batch_id"]
    wait_for_status(batch_id, ["running"])
    time.sleep(1)  # a few records in
    worker.kill()
    batch = Batch.objects.get(pk=batch_id)
    assert batch.status == "running"
    c = JobCounters.objects.get(job__name="slow")
    assert (c.records_processed, c.batches_succeeded) == (0, 0)  # nothing half-written

    replacement = Worker(tmp_path, name="replacement", VELO_BATCH_LEASE_SECONDS=3).start()
    try:
        body = api.wait_until_final(batch_id, timeout=90)
    finally:
        replacement.stop()
    assert (body["status"], body["processed"], body["attempts"]) == ("succeeded", 10, 1)
    c = JobCounters.objects.get(job__name="slow")
    assert (c.records_processed, c.batches_succeeded) == (10, 1)
    assert Batch.objects.get(pk=batch_id).lost_attempts == 1


@pytest.mark.skipif(bool(ScratchRedis.available()), reason="needs the redis-server binary")
def test_a_broker_outage_loses_no_accepted_batch(transactional_db, tmp_path):
    Job.objects.create(name="outage", processor="demo.trades", failure_strategy="send_to_dlq")
    _, token = create_token("outage")
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    web = WebServer(tmp_path, CELERY_BROKER_URL=broker).start()
    redis = None
    try:
        batch_ids = []
        for _ in range(2):  # the second one finds the broker already known to be down
            batch_ids.append(_submit(web, "outage", token, [GOOD, BAD]))
        assert set(Batch.objects.values_list("status", flat=True)) == {"queued"}

        redis = ScratchRedis(port).start()
        worker = Worker(tmp_path, name="after-outage", CELERY_BROKER_URL=broker).start()
        try:
            batches = [wait_for_status(pk, ["partial"], timeout=60) for pk in batch_ids]
        finally:
            worker.stop()
        for batch in batches:
            assert (batch.processed, batch.failed, batch.dlq_added) == (2, 1, 1)
    finally:
        web.stop()
        if redis:
            redis.stop()


def _submit(web, job, token, records):
    """A batch sent over HTTP to a web server of the test's own; its id."""
    response = requests.post(
        f"{web.url}/api/v1/jobs/{job}/batches",
        json=records,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["batch_id"]


def _idle_worker_connections():
    """Backends to the test database, other than ours, idle for a second or more."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            " AND state = 'idle' AND now() - backend_start > interval '1 second'"
        )
        return [pid for (pid,) in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="cuts PostgreSQL backends")
def test_a_worker_reuses_its_connections_and_survives_them_being_cut(transactional_db, tmp_path):
    job = Job.objects.create(name="cut", processor="demo.trades", failure_strategy="send_to_dlq")
    worker = Worker(tmp_path, name="reusing", DATABASE_CONN_MAX_AGE=600).start()
    try:
        first, _ = submit_batch(job, [GOOD, BAD])
        wait_for_status(first.pk, ["partial"], timeout=60)
        # Kept between tasks (Celery alone would close them after every task) ...
        kept = wait_for(_idle_worker_connections, timeout=10, what="a connection kept open")
        offset = len(worker.log())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [kept])
        # ... and when the database drops them, the next task connects again,
        # found out by the health check before its first query, not by failing.
        second, _ = submit_batch(job, [GOOD, BAD])
        batch = wait_for_status(second.pk, ["partial"], timeout=60)
        time.sleep(1.5)  # a beat tick or two on the other kept connections
        after_cut = worker.log()[offset:]
    finally:
        worker.stop()
    assert (batch.attempts, batch.lost_attempts, batch.processed, batch.dlq_added) == (1, 0, 2, 1)
    assert "OperationalError" not in after_cut and "InterfaceError" not in after_cut, after_cut


def test_an_unreadable_message_on_the_embedded_broker_does_not_stop_the_worker(
    transactional_db, tmp_path
):
    """A torn or stray message file once killed the worker (kombu #1551); now it is set aside."""
    Job.objects.create(name="embedded", processor="demo.trades", failure_strategy="send_to_dlq")
    _, token = create_token("embedded broker")
    broker_dir = tmp_path / "broker"
    embedded = {"CELERY_BROKER_URL": "filesystem://", "VELO_BROKER_DIR": broker_dir}
    web = WebServer(tmp_path, **embedded).start()
    worker = None
    try:
        queue = os.environ["VELO_QUEUE"]
        garbage = broker_dir / "queue" / f"0_torn.{queue}.msg"
        garbage.write_text("")  # what a consumer saw of a message still being written
        worker = Worker(tmp_path, name="embedded-worker", **embedded).start()
        set_aside = broker_dir / "rejected" / garbage.name
        wait_for(set_aside.exists, what="the unreadable file to be set aside")
        batch_id = _submit(web, "embedded", token, [GOOD, BAD])
        batch = wait_for_status(batch_id, ["partial"], timeout=60)
        assert (batch.processed, batch.failed, batch.dlq_added) == (2, 1, 1)
        assert worker.proc.poll() is None
        assert "unreadable message file set aside" in worker.log()
    finally:
        if worker:
            worker.stop()
        web.stop()
