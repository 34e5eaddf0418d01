"""The kit against real servers: Prometheus scraping a running Velo, and gunicorn with this config.

Prometheus is Debian's `prometheus` package, started on loopback with deploy/prometheus.yml
(scrape and evaluation every second instead of 15) and deploy/alerts.yml; the tests are
skipped, saying why, when it is not installed.
"""

import re
import shutil
import sys

import pytest
import requests

from tests.integration.harness import Process, WebServer, child_env, free_port, wait_for

from .conftest import need, populate
from .promql import ALERTS, PROMETHEUS_CONFIG, dashboard_expressions, rule_expressions

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AUTH_BLOCK = (
    "    # authorization:\n"
    "    #   type: Bearer\n"
    "    #   credentials_file: /etc/prometheus/velo-metrics-token\n"
)


def prometheus_config(directory, web_port, prometheus_port, token):
    """deploy/prometheus.yml, pointed at the test's servers, with its token block enabled."""
    text = PROMETHEUS_CONFIG.read_text()
    for old, new in {
        "127.0.0.1:8000": f"127.0.0.1:{web_port}",
        "127.0.0.1:9090": f"127.0.0.1:{prometheus_port}",
        "scrape_interval: 15s": "scrape_interval: 1s",
        "evaluation_interval: 15s": "evaluation_interval: 1s",
        "scrape_timeout: 10s": "scrape_timeout: 1s",
    }.items():
        assert old in text, f"deploy/prometheus.yml changed: {old!r} is gone"
        text = text.replace(old, new)
    if token:
        assert AUTH_BLOCK in text, "deploy/prometheus.yml no longer shows the token block"
        (directory / "velo-metrics-token").write_text(token + "\n")
        text = text.replace(
            AUTH_BLOCK,
            "    authorization:\n"
            "      type: Bearer\n"
            f"      credentials_file: {directory / 'velo-metrics-token'}\n",
        )
    shutil.copy(ALERTS, directory / "alerts.yml")  # rule_files is relative to the config
    path = directory / "prometheus.yml"
    path.write_text(text)
    return path


class Prometheus(Process):
    def __init__(self, binary, config, directory, port):
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        super().__init__("prometheus", argv, {"PATH": "/usr/bin:/bin"}, directory)

    def api(self, path, **params):
        """The `data` of a Prometheus API answer, or None while it cannot answer."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log()[-3000:]}")
        try:
            body = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr):
        data = self.api("query", query=expr)
        return None if data is None else data["result"]


def value_of(prometheus, expr):
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def grafana_to_promql(expr):
    """A dashboard query as Grafana sends it with the variables at their defaults."""
    return expr.replace('"$job_name"', '".*"').replace("$__rate_interval", "1m")


@pytest.fixture
def web(transactional_db, run_batch, tmp_path, request):
    """Velo's web server over a populated test database; its param protects /metrics.

    The engine is driven in-process; the tasks submit_batch sends find their
    batches already finished, should any worker ever read them.
    """
    expected = populate(run_batch)
    token = getattr(request, "param", "")
    server = WebServer(tmp_path, VELO_METRICS_TOKEN=token).start()
    server.token, server.expected = token, expected
    yield server
    server.stop()


@pytest.mark.parametrize("web", ["", "s3cret-metrics-token"], indirect=True, ids=["open", "token"])
def test_prometheus_scrapes_velo_and_its_queries_and_rules_work(web, tmp_path):
    binary, port = need("prometheus"), free_port()
    unauthenticated = requests.get(f"{web.url}/metrics", timeout=10).status_code
    assert unauthenticated == (401 if web.token else 200)
    config = prometheus_config(tmp_path, web.port, port, web.token)
    prometheus = Prometheus(binary, config, tmp_path, port).start()
    try:
        for job, added in web.expected.items():
            wait_for(
                lambda job=job, added=added: (
                    value_of(prometheus, f'velo_dlq_entries_added_total{{job_name="{job}"}}')
                    == added
                ),
                timeout=60,
                interval=0.5,
                what=f"Prometheus to report velo_dlq_entries_added_total of {job} = {added}",
            )
        assert value_of(prometheus, 'up{job="velo"}') == 1

        # The dashboard's job variable lists the jobs.
        jobs = prometheus.api(
            "label/job_name/values", **{"match[]": "velo_records_processed_total"}
        )
        assert set(jobs) == set(web.expected)

        # Every dashboard query runs and shows data once a few scrapes are in.
        queries = [(where, grafana_to_promql(expr)) for where, expr in dashboard_expressions()]

        def empty_queries():
            return [(where, expr) for where, expr in queries if not prometheus.query(expr)]

        try:
            wait_for(lambda: not empty_queries(), timeout=60, interval=1, what="dashboard data")
        except AssertionError:
            raise AssertionError(f"dashboard queries without data: {empty_queries()}") from None

        # Prometheus loaded every rule and evaluates it without error; on this data
        # only the full DLQ of trades is alarming.
        def rules():
            data = prometheus.api("rules")
            return [] if data is None else [r for g in data["groups"] for r in g["rules"]]

        wait_for(
            lambda: (
                len(rules()) == len(rule_expressions())
                and all(r["health"] == "ok" for r in rules())
            ),
            timeout=60,
            interval=0.5,
            what="every alert rule to be evaluated",
        )
        active = {
            (r["name"], a["labels"].get("job_name"))
            for r in rules()
            for a in r.get("alerts", [])
            if r["state"] != "inactive"
        }
        assert active == {("VeloDLQCritical", "trades")}, active
    except AssertionError:
        print(f"--- prometheus log (tail)\n{prometheus.log()[-4000:]}")
        print(f"--- web log (tail)\n{web.log()[-4000:]}")
        raise
    finally:
        prometheus.stop()


def test_gunicorn_with_this_config_merges_every_workers_django_metrics(transactional_db, tmp_path):
    """Two workers, PROMETHEUS_MULTIPROC_DIR as compose.yaml sets it: any worker's /metrics
    counts the requests of both."""
    port = free_port()
    multiproc = tmp_path / "prometheus-multiproc"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"a previous run")
    env = child_env(
        WEB_CONCURRENCY=2,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        PROMETHEUS_MULTIPROC_DIR=multiproc,
        VELO_METRICS_TOKEN="",
    )
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(PROMETHEUS_CONFIG.parent / "gunicorn.conf.py"),
    ]
    gunicorn = Process("gunicorn", argv, env, tmp_path).start()
    url = f"http://127.0.0.1:{port}"

    def answers(path):
        try:
            return requests.get(f"{url}{path}", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    try:
        # Ready when /metrics answers: /live is what the test counts, so it is not used here.
        wait_for(lambda: answers("/metrics"), timeout=60, what="gunicorn to answer")
        # Both workers booted in multiprocess mode: each keeps its own files.
        wait_for(
            lambda: len({p.stem.rsplit("_", 1)[1] for p in multiproc.glob("*.db")}) >= 2,
            timeout=30,
            what="both workers' metric files",
        )
        assert not (multiproc / "counter_1.db").exists()  # emptied at start
        for _ in range(10):
            assert answers("/live")
        counts = set()
        for _ in range(6):  # sync workers, a new connection each: both workers answer
            text = requests.get(f"{url}/metrics", timeout=10).text
            match = re.search(
                r'^django_http_requests_total_by_view_transport_method_total\{[^}]*view="live"[^}]*\}'
                r" (\S+)$",
                text,
                flags=re.MULTILINE,
            )
            counts.add(float(match.group(1)))
        assert counts == {10.0}
    except AssertionError:
        print(f"--- gunicorn log (tail)\n{gunicorn.log()[-4000:]}")
        raise
    finally:
        gunicorn.stop()
