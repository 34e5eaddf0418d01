"""deploy/'s gunicorn config, compose file, Procfile, alert rules and dashboard hold together."""

import json
import os
import re
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest

from .promql import (
    ALERT_TESTS,
    DEPLOY,
    ROOT,
    dashboard,
    dashboard_panels,
    rule_blocks,
    variable_queries,
)

GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
COMPOSE = DEPLOY / "compose.yaml"


def gunicorn_conf():
    return runpy.run_path(str(GUNICORN_CONF), run_name="gunicorn_conf")


class FakeServer:
    """What gunicorn's hooks use of the arbiter: its settings and its log."""

    def __init__(self, workers):
        self.cfg = SimpleNamespace(workers=workers)
        self.log = SimpleNamespace(info=lambda *args: None)


# --- gunicorn.conf.py ---------------------------------------------------------------------


def test_gunicorn_config_reads_workers_and_bind_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:9000")
    conf = gunicorn_conf()
    assert conf["workers"] == 3
    assert conf["bind"] == ["0.0.0.0:9000"]
    assert conf["wsgi_app"] == "velo_site.wsgi:application"
    assert conf["chdir"] == str(ROOT)
    assert conf["preload_app"] is False
    for hook in ("on_starting", "child_exit", "on_exit"):
        assert callable(conf[hook])


def test_gunicorn_config_defaults_to_loopback_and_several_workers(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    conf = gunicorn_conf()
    assert conf["bind"] == ["127.0.0.1:8000"]  # where prometheus.yml looks
    assert conf["workers"] >= 3


def test_gunicorn_accepts_the_config_and_loads_the_app():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="velo_site.settings_test", WEB_CONCURRENCY="2")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(GUNICORN_CONF)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_on_starting_empties_the_multiprocess_directory(tmp_path, monkeypatch):
    (tmp_path / "counter_41.db").write_bytes(b"old run")
    (tmp_path / "gauge_livesum_41.db").write_bytes(b"old run")
    (tmp_path / "notes.txt").write_text("not prometheus_client's")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_conf()["on_starting"](FakeServer(workers=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_on_starting_makes_a_private_directory_for_several_workers(monkeypatch):
    # setenv first, so that monkeypatch removes what on_starting sets afterwards.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    conf = gunicorn_conf()
    conf["on_starting"](FakeServer(workers=1))
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # one process needs none

    conf["on_starting"](FakeServer(workers=2))
    made = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(made)
    conf["on_exit"](FakeServer(workers=2))
    assert not os.path.exists(made)


def test_child_exit_drops_the_live_gauges_of_the_dead_worker(tmp_path, monkeypatch):
    for name in (
        "counter_42.db",
        "gauge_livesum_42.db",
        "gauge_liveall_42.db",
        "gauge_livesum_7.db",
    ):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_conf()["child_exit"](FakeServer(workers=2), SimpleNamespace(pid=42))
    # Its counters stay: they are part of the totals; another worker's gauge stays.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_42.db", "gauge_livesum_7.db"]


# --- compose.yaml -------------------------------------------------------------------------
# PyYAML is not one of Velo's dependencies: the compose file is read by its indentation
# (two spaces a level, as written), which is enough to check its shape.


def compose_sections():
    """{top-level key: {second-level key: its block of text}}."""
    text = COMPOSE.read_text()
    assert "\t" not in text, "YAML does not allow tabs for indentation"
    sections, top, second = {}, None, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if m := re.match(r"^([\w.-]+):", line):
            top, second = m.group(1), None
            sections[top] = {}
        elif top and (m := re.match(r"^  ([\w.-]+):", line)):
            second = m.group(1)
            sections[top][second] = ""
        elif top and second:
            sections[top][second] += line + "\n"
    return sections


def test_compose_has_the_services_of_a_production_like_deployment():
    sections = compose_sections()
    services = sections["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "control",
        "beat",
        "prometheus",
    }
    assert "image: postgres:15" in services["postgres"]
    assert "image: redis:7" in services["redis"]
    assert "manage.py migrate" in services["migrate"]
    assert "deploy/gunicorn.conf.py" in services["web"]
    assert "PROMETHEUS_MULTIPROC_DIR:" in services["web"]
    assert re.search(r"-\s*worker\b", services["worker"])
    assert re.search(r"-\s*beat\b", services["beat"])
    assert re.search(r"--queues\n\s*- velo-control\n", services["control"])
    assert re.search(r"--queues\n\s*- velo\n", services["worker"])
    for service in ("web", "worker", "control", "beat"):
        assert "<<: *velo" in services[service]  # the image, and waiting for migrate
    assert "service_completed_successfully" in sections["x-velo"]["depends_on"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml" in services["prometheus"]
    assert "./alerts.yml:/etc/prometheus/alerts.yml" in services["prometheus"]
    assert "grafana/velo-dashboard.json" in services["grafana"]


def test_compose_passes_the_environment_of_spec_section_2():
    environment = "\n".join(compose_sections()["x-velo-env"])
    for variable in (
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "REGION",
        "APP_VERSION",
        "VELO_METRICS_TOKEN",
    ):
        assert variable in environment


def test_every_file_compose_mounts_or_builds_from_exists():
    text = COMPOSE.read_text()
    for source in re.findall(r"^\s*-\s*(\./[^:\s]+):", text, flags=re.MULTILINE):
        assert (DEPLOY / source).exists(), source
    dockerfile = re.search(r"dockerfile:\s*(\S+)", text).group(1)
    assert (ROOT / dockerfile).is_file()


def test_compose_parses_as_yaml_when_pyyaml_is_installed():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not a Velo dependency")
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["services"]["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert compose["services"]["worker"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


# --- Procfile -----------------------------------------------------------------------------


def test_procfile_runs_web_worker_control_and_beat():
    result = subprocess.run(
        [sys.executable, "-m", "honcho", "check", "-f", str(DEPLOY / "Procfile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(web, worker, control, beat)" in result.stdout + result.stderr


@pytest.mark.parametrize("procfile", [DEPLOY / "Procfile", ROOT / "Procfile.dev"])
def test_the_beat_tick_and_the_purge_have_a_worker_of_their_own(procfile, settings):
    """The tick's tasks are routed to the control queue, which only the control worker takes."""
    lines = dict(
        line.split(": ", 1)
        for line in procfile.read_text().splitlines()
        if re.match(r"^\w+:", line)
    )
    assert re.search(
        r"--queues (\$\{VELO_CONTROL_QUEUE:-velo-control\}|velo-control) ", lines["control"]
    )
    assert re.search(r"--queues (\$\{VELO_QUEUE:-velo\}|velo) ", lines["worker"])
    for task in ("dlq.dispatch_due_batches", "dlq.purge_expired"):
        assert settings.CELERY_TASK_ROUTES[task] == {"queue": settings.VELO_CONTROL_QUEUE}
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["options"]["queue"] == settings.VELO_CONTROL_QUEUE


# --- alerts.yml ---------------------------------------------------------------------------


def readme_anchors(path):
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_alert_has_a_severity_a_summary_a_description_a_runbook_and_a_unit_test():
    blocks = rule_blocks()
    unit_tests = ALERT_TESTS.read_text()
    anchors = readme_anchors(DEPLOY / "README.md")
    for name, block in blocks.items():
        assert re.search(r"severity: (warning|critical)\b", block), name
        assert "summary:" in block, name
        assert "description:" in block, name
        [url] = re.findall(r'runbook_url: "([^"]+)"', block) or [None]
        assert url == f"deploy/README.md#{name.lower()}", (name, url)
        assert url.split("#")[1] in anchors, f"{name}: no heading {name} in deploy/README.md"
        assert f"alertname: {name}\n" in unit_tests, f"{name} has no case in {ALERT_TESTS.name}"


# --- the Grafana dashboard ----------------------------------------------------------------


def test_dashboard_has_a_datasource_and_a_job_variable():
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dict(variable_queries(board)) == {
        "job_name": "label_values(velo_records_processed_total, job_name)"
    }
    for panel in dashboard_panels(board):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_has_the_panels_of_velostreams_error_dashboard_and_velos_own():
    panels = {p["title"]: p for p in dashboard_panels() if p["type"] != "row"}
    exprs = {title: [t["expr"] for t in p["targets"]] for title, p in panels.items()}

    def uses(title, needle):
        assert any(needle in expr for expr in exprs[title]), (title, exprs[title])

    uses("Total errors", "velo_error_messages_total")
    uses("Unique error types", "velo_unique_error_types")
    uses("Buffered messages", "velo_buffered_error_messages")
    uses("Errors over time", "rate(velo_error_messages_total[")
    uses("DLQ capacity per job", "velo_dlq_capacity_percent")
    uses("DLQ health status", "velo_dlq_health_status")
    uses("DLQ size", "velo_dlq_size")
    uses("Batches in flight", "velo_batches_in_flight")
    for counter in ("added", "rejected", "requeued"):
        uses("DLQ entries added / rejected / requeued", f"velo_dlq_entries_{counter}_total")
    uses("Failure rate per job", "velo_records_failed_total")
    uses(
        "Batch duration p95",
        "histogram_quantile(0.95, sum by (le, job_name) (rate(velo_batch_duration_seconds_bucket",
    )
    table = panels["Last 10 error messages"]
    assert table["type"] == "table"
    [target] = table["targets"]
    assert "velo_error_message{" in target["expr"]
    assert target["instant"] is True
    assert target["format"] == "table"


def test_dashboard_ids_and_layout_are_sound():
    board = dashboard()
    panels = list(dashboard_panels(board))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["refId"]
    json.dumps(board)  # plain JSON, nothing Grafana would have to guess
