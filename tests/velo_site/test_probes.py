"""/live, /ready and /health (SPEC §5, §6): JSON shapes, status codes, and real outages."""

import time

import pytest
import requests

from dlq.models import Job, JobCounters
from tests.contract import HEALTH_JSON_KEYS
from tests.integration.harness import WebServer
from tests.metrics.servers import Gunicorn
from velo_site import checks

# Nothing listens on port 1 of the loopback: a connection is refused at once.
DEAD_DATABASE = "postgres://postgres@127.0.0.1:1/x"
DEAD_BROKER = "redis://127.0.0.1:1/0"


def check_names(body):
    return [check["name"] for check in body["checks"]]


def job_with_pending(name, pending, max_size, **counters):
    job = Job.objects.create(name=name, processor="demo.trades", dlq_max_size=max_size)
    JobCounters.objects.filter(job=job).update(dlq_pending=pending, **counters)
    return job


def failing(message="it is down"):
    """A check's run() that fails the way a real one does."""

    def run(self):
        raise checks.CheckFailed(message)

    return run


# --- in-process -------------------------------------------------------------------------


@pytest.mark.django_db
def test_live_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/live")
    assert response.status_code == 200
    assert response.json() == {"live": True}


@pytest.mark.django_db
def test_ready_names_both_checks_when_everything_answers(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"ready", "checks"}
    assert body["ready"] is True
    assert check_names(body) == ["database", "broker"]
    for check in body["checks"]:
        assert set(check) == {"name", "ready", "message"}
        assert check["ready"] is True
        assert isinstance(check["message"], str)
        assert check["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("down", ["database", "broker"])
def test_ready_is_503_and_names_the_check_that_failed(client, monkeypatch, down):
    cls = {"database": checks.DatabaseCheck, "broker": checks.BrokerCheck}[down]
    monkeypatch.setattr(cls, "run", failing(f"{down} is down"))
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    by_name = {check["name"]: check for check in body["checks"]}
    assert by_name[down] == {"name": down, "ready": False, "message": f"{down} is down"}
    other = ({"database", "broker"} - {down}).pop()
    assert by_name[other]["ready"] is True


@pytest.mark.django_db
def test_an_unexpected_error_in_a_check_is_named_by_type_without_its_text(client, monkeypatch):
    def leaky(self):
        raise RuntimeError("password=hunter2 host=db.internal")

    monkeypatch.setattr(checks.DatabaseCheck, "run", leaky)
    response = client.get("/ready")
    assert response.status_code == 503
    database = response.json()["checks"][0]
    assert database["ready"] is False
    assert "RuntimeError" in database["message"]
    assert "hunter2" not in response.content.decode()


@pytest.mark.django_db
def test_a_check_that_hangs_is_reported_not_ready_within_its_deadline(client, monkeypatch):
    monkeypatch.setattr(checks, "TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(checks.BrokerCheck, "run", lambda self: time.sleep(5))
    started = time.monotonic()
    response = client.get("/ready")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    broker = response.json()["checks"][1]
    assert broker["name"] == "broker"
    assert broker["ready"] is False
    assert "no answer" in broker["message"]


@pytest.mark.django_db
def test_health_is_healthy_with_the_dlq_of_every_job_in_the_spec_shape(client, settings):
    job_with_pending("calm", 50, 100, dlq_added=60, dlq_rejected=0)
    job_with_pending("watch", 70, 100)  # CAUTION is not degraded
    job_with_pending("open", 10**6, None)  # unbounded: always HEALTHY
    response = client.get("/health")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "version", "uptime_seconds", "checks", "dlq"}
    assert body["status"] == "healthy"
    assert body["version"] == settings.VELO_DEPLOYMENT.version
    assert isinstance(body["uptime_seconds"], int | float)
    assert body["uptime_seconds"] >= 0
    assert check_names(body) == ["database", "broker"]
    assert all(set(item) == set(HEALTH_JSON_KEYS) for item in body["dlq"])
    assert body["dlq"] == [
        {
            "job": "calm",
            "current_size": 50,
            "max_size": 100,
            "capacity_usage_percent": 50.0,
            "is_at_capacity": False,
            "entries_added": 60,
            "entries_rejected": 0,
            "last_entry_time": None,
            "last_capacity_exceeded_time": None,
            "status": "HEALTHY",
        },
        {
            "job": "open",
            "current_size": 10**6,
            "max_size": None,
            "capacity_usage_percent": 0.0,
            "is_at_capacity": False,
            "entries_added": 0,
            "entries_rejected": 0,
            "last_entry_time": None,
            "last_capacity_exceeded_time": None,
            "status": "HEALTHY",
        },
        {
            "job": "watch",
            "current_size": 70,
            "max_size": 100,
            "capacity_usage_percent": 70.0,
            "is_at_capacity": False,
            "entries_added": 0,
            "entries_rejected": 0,
            "last_entry_time": None,
            "last_capacity_exceeded_time": None,
            "status": "CAUTION - >70% full",
        },
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pending", "status"), [(90, "WARNING - >90% full"), (100, "CRITICAL - at capacity")]
)
def test_health_is_degraded_but_200_when_a_dlq_is_warning_or_critical(client, pending, status):
    job_with_pending("calm", 1, 100)
    job_with_pending("full", pending, 100)
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert {item["job"]: item["status"] for item in body["dlq"]} == {
        "calm": "HEALTHY",
        "full": status,
    }


@pytest.mark.django_db
def test_health_is_unhealthy_and_503_when_a_check_fails(client, monkeypatch):
    job_with_pending("full", 100, 100)
    monkeypatch.setattr(checks.BrokerCheck, "run", failing())
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"][1] == {"name": "broker", "ready": False, "message": "it is down"}
    # The database answers, so the DLQ is still shown.
    assert [item["job"] for item in body["dlq"]] == ["full"]


# --- real server processes --------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    """Start a web server process (stopped, its log shown, at the end)."""
    started = []

    def start(kind, **env):
        web = kind(tmp_path, name=f"{kind.__name__.lower()}-{len(started)}", **env).start()
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()
        print(f"--- {web.name} log (tail)\n{web.log()[-3000:]}")


def get(web, path):
    response = requests.get(f"{web.url}{path}", timeout=15)
    return response.status_code, response


@pytest.mark.e2e
@pytest.mark.django_db
def test_with_the_database_unreachable_live_stays_200_and_ready_names_the_database(server):
    # gunicorn, as production runs it: runserver checks migrations before it
    # listens, so it cannot even start without a database.
    web = server(Gunicorn, workers=1, DATABASE_URL=DEAD_DATABASE)
    status, response = get(web, "/live")
    assert (status, response.json()) == (200, {"live": True})

    started = time.monotonic()
    status, response = get(web, "/ready")
    assert time.monotonic() - started < 5, "a refused connection must be reported at once"
    assert status == 503
    body = response.json()
    assert body["ready"] is False
    assert check_names(body) == ["database", "broker"]
    database, broker = body["checks"]
    assert database["ready"] is False
    assert isinstance(database["message"], str)
    assert database["message"]
    assert "127.0.0.1" not in database["message"]  # no connection details on an open probe
    assert broker["ready"] is True

    status, response = get(web, "/health")
    assert status == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["dlq"] == []

    # A scrape fails plainly (up == 0) rather than lose its velo_* series.
    status, _ = get(web, "/metrics")
    assert status == 503

    status, response = get(web, "/live")
    assert (status, response.json()) == (200, {"live": True})


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_unreachable_live_stays_200_and_ready_names_the_broker(server):
    job_with_pending("orders", 3, 10)
    web = server(WebServer, CELERY_BROKER_URL=DEAD_BROKER)
    status, response = get(web, "/live")
    assert (status, response.json()) == (200, {"live": True})

    started = time.monotonic()
    status, response = get(web, "/ready")
    # No retry after a refusal (kombu's first retry waits 2 s).
    assert time.monotonic() - started < 1.5, "a refused connection must be reported at once"
    assert status == 503
    body = response.json()
    assert body["ready"] is False
    database, broker = body["checks"]
    assert database == {"name": "database", "ready": True, "message": database["message"]}
    assert broker["name"] == "broker"
    assert broker["ready"] is False
    assert broker["message"]

    status, response = get(web, "/health")
    assert status == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert [(item["job"], item["current_size"]) for item in body["dlq"]] == [("orders", 3)]

    status, response = get(web, "/live")
    assert (status, response.json()) == (200, {"live": True})
