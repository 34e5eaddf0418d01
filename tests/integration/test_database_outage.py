"""PostgreSQL down in the middle of work: nothing lost, nothing twice, 503s (never a 500)
while it is down, /ready saying so, and the work finishing by itself once it is back.

The database is a scratch cluster of the test's own (tests/integration/scratch.py): the
shared one is never stopped.
"""

import time

import pytest
import requests
from django.db import connection

from devtools.services import postgres_available

from .harness import WebServer, Worker, wait_for
from .scratch import ScratchSite

pytestmark = [
    pytest.mark.worker,
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="runs in the PostgreSQL + Redis leg"
    ),
    pytest.mark.skipif(bool(postgres_available()), reason=postgres_available() or "ok"),
]

SLOW = {"processor": "test.slow_until_fixed", "config": {"sleep": 0.01}}
FINAL = ["succeeded", "partial", "failed"]


@pytest.fixture
def site(tmp_path):
    scratch = ScratchSite(tmp_path)
    token = scratch.prepare({"slow": {**SLOW, "failure_strategy": "send_to_dlq"}})
    web = WebServer(tmp_path, **_overrides(scratch)).start()
    worker = Worker(tmp_path, **_overrides(scratch)).start()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    scratch.web, scratch.worker, scratch.http = web, worker, session
    try:
        yield scratch
    finally:
        worker.stop()
        web.stop()
        scratch.remove()
        print(f"--- worker log (tail)\n{worker.log()[-4000:]}")


def _overrides(scratch):
    return {"DATABASE_URL": scratch.pg.url, "DATABASE_CONN_MAX_AGE": "60"}


def _records(count, every_nth_fails=10):
    return [{"n": i, **({"fail": True} if i % every_nth_fails == 0 else {})} for i in range(count)]


def _answers_while_down(site):
    """What the API and the probes answer while the database is down."""
    url = site.web.url
    return {
        "submit": site.http.post(f"{url}/api/v1/jobs/slow/batches", json=_records(3), timeout=30),
        "status": site.http.get(f"{url}/api/v1/batches/1", timeout=30),
        "dlq": site.http.get(f"{url}/api/v1/dlq?job=slow", timeout=30),
        "ready": requests.get(f"{url}/ready", timeout=30),
    }


def _assert_unavailable(answers):
    codes = {name: response.status_code for name, response in answers.items()}
    assert codes == dict.fromkeys(answers, 503), codes
    ready = answers["ready"].json()
    assert ready["ready"] is False
    assert [c["ready"] for c in ready["checks"] if c["name"] == "database"] == [False]


def _database_down_for_a_moment(site):
    """Crash the database for ~3 s, checking what is answered meanwhile; when it was back."""
    site.pg.stop("immediate")
    try:
        _assert_unavailable(_answers_while_down(site))
        time.sleep(2)
    finally:
        site.pg.start()
    return time.monotonic()


def test_a_database_restart_mid_batch_loses_nothing_and_counts_once(site):
    submitted = []
    for _ in range(4):  # 200 records at 10 ms: each batch takes its worker ~2 s
        response = site.http.post(
            f"{site.web.url}/api/v1/jobs/slow/batches", json=_records(200), timeout=30
        )
        assert response.status_code == 202, response.text
        submitted.append(response.json()["batch_id"])
    wait_for(
        lambda: site.value("SELECT count(*) FROM dlq_batch WHERE status = 'running'"),
        timeout=60,
        what="a batch to be running",
    )
    time.sleep(1.0)  # well into it
    back = _database_down_for_a_moment(site)

    wait_for(
        lambda: site.value("SELECT count(*) FROM dlq_batch WHERE status <> ALL(%s)", FINAL) == 0,
        timeout=90,
        interval=0.5,
        what="every batch to finish after the restart",
    )
    print(f"every batch finished {time.monotonic() - back:.1f} s after the database came back")
    rows = site.rows("SELECT id, status, processed, failed, dlq_added FROM dlq_batch ORDER BY id")
    assert [row[0] for row in rows] == submitted
    assert {row[1:] for row in rows} == {("partial", 200, 20, 20)}
    # The outage did hit work in hand: an attempt that could not be recorded, handed back.
    assert site.value("SELECT sum(lost_attempts) FROM dlq_batch") >= 1
    assert site.value("SELECT count(*) FROM dlq_dlqentry") == 80
    assert (
        site.rows("SELECT batch_id, index FROM dlq_dlqentry GROUP BY 1, 2 HAVING count(*) > 1")
        == []
    )
    assert site.rows(
        "SELECT records_processed, records_failed, dlq_added, batches_partial FROM dlq_jobcounters"
    ) == [(800, 80, 80, 4)]
    assert requests.get(f"{site.web.url}/ready", timeout=30).status_code == 200


def test_a_database_restart_mid_requeue_run_attempts_each_entry_once(site):
    response = site.http.post(
        f"{site.web.url}/api/v1/jobs/slow/batches",
        json=_records(300, every_nth_fails=1),
        timeout=30,
    )
    batch_id = response.json()["batch_id"]
    wait_for(
        lambda: site.value("SELECT status FROM dlq_batch WHERE id = %s", batch_id) in FINAL,
        timeout=60,
        what="the batch to dead-letter its records",
    )
    assert site.value("SELECT count(*) FROM dlq_dlqentry WHERE status = 'pending'") == 300
    site.execute(
        "UPDATE dlq_job SET config = '{\"sleep\": 0.01, \"fixed\": true}' WHERE name = 'slow'"
    )
    response = site.http.post(
        f"{site.web.url}/api/v1/dlq/requeue", json={"job": "slow"}, timeout=30
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    wait_for(
        lambda: site.value("SELECT count(*) FROM dlq_dlqentry WHERE status = 'resolved'") > 30,
        timeout=60,
        what="the run to be well under way",
    )
    back = _database_down_for_a_moment(site)

    wait_for(
        lambda: site.value("SELECT status FROM dlq_requeuerun WHERE id = %s", run_id) == "finished",
        timeout=120,
        interval=0.5,
        what="the requeue run to finish after the restart",
    )
    print(f"the run finished {time.monotonic() - back:.1f} s after the database came back")
    assert site.rows("SELECT status, count(*) FROM dlq_dlqentry GROUP BY 1") == [("resolved", 300)]
    done = site.rows("SELECT done, succeeded, failed FROM dlq_requeuerun WHERE id = %s", run_id)
    assert done == [(300, 300, 0)]
    assert f"requeue run {run_id}: database unavailable" in site.worker.log()
    attempts = site.rows(
        "SELECT entry_id, count(*) FROM dlq_dlqattempt WHERE kind = 'requeue'"
        " GROUP BY 1 HAVING count(*) <> 1"
    )
    assert attempts == [], f"entries attempted other than once by the run: {attempts[:5]}"
    assert site.rows("SELECT dlq_requeued, dlq_resolved, dlq_pending FROM dlq_jobcounters") == [
        (300, 300, 0)
    ]
