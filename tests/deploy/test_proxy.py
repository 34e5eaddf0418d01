"""deploy/nginx.conf in front of gunicorn keeps Velo answering while slow clients hold connections.

Issue 13, finding 6: three connections that sent their headers slowly kept /live failing for
most of a minute against two sync gunicorn workers, and a body shorter than its
Content-Length held a worker for 30 s. Here gunicorn runs with deploy/gunicorn.conf.py and two
workers, nginx (Debian's package) with deploy/nginx.conf as the current user, pointed at it;
slow clients hold more connections than there are workers for the whole time /live is probed.
"""

import contextlib
import os
import pwd
import shutil
import socket
import sys
import threading
import time

import pytest
import requests

from dlq.models import Job
from dlq.tokens import create_token
from tests.integration.harness import Process, child_env, free_port, serves_live, wait_for

from .promql import DEPLOY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NGINX_CONF = DEPLOY / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
MAX_BODY = 10 * 1024 * 1024  # VELO_MAX_BODY_BYTES' default


def nginx_config(directory, port, upstream_port):
    """deploy/nginx.conf with its paths in `directory`, on `port`, proxying to gunicorn."""
    text = NGINX_CONF.read_text()
    for old, new in {
        "/tmp/nginx/": f"{directory}/",
        "server web:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 8080;": f"listen 127.0.0.1:{port};",
    }.items():
        assert old in text, f"deploy/nginx.conf changed: {old!r} is gone"
        text = text.replace(old, new)
    if os.geteuid() == 0:  # else nginx's workers would become nobody, who cannot write here
        text = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" + text
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


class SlowClient(threading.Thread):
    """Sends a request a byte at a time, reconnecting whenever it is dropped, until stopped.

    With `body_short_by`, it declares a Content-Length that many bytes longer than the body it
    sends, then holds the connection open without sending the rest.
    """

    def __init__(self, port, stop, *, request, body_short_by=0, interval=0.3):
        super().__init__(daemon=True)
        self.port, self.stop, self.interval = port, stop, interval
        self.request, self.body_short_by = request, body_short_by
        self.connections = 0

    def parts(self):
        """(what is sent a byte at a time, what is sent at once after it)."""
        if not self.body_short_by:
            return self.request, b""
        head, body = self.request.split(b"\r\n\r\n", 1)
        length = len(body) + self.body_short_by
        return head, f"\r\nContent-Length: {length}\r\n\r\n".encode() + body

    def run(self):
        drip, rest = self.parts()
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    self.connections += 1
                    for byte in drip:
                        if self.stop.wait(self.interval):
                            return
                        sock.sendall(bytes([byte]))
                    sock.sendall(rest)
                    sock.settimeout(0.01)
                    while not self.stop.wait(0.2):  # hold it; the server decides when to drop
                        try:
                            if sock.recv(4096) == b"":
                                break
                        except TimeoutError:
                            pass
            except OSError:
                self.stop.wait(0.2)


@contextlib.contextmanager
def proxied_site(tmp_path):
    """gunicorn (deploy/gunicorn.conf.py, two sync workers, DEBUG off) behind nginx
    (deploy/nginx.conf): yields (nginx's URL, nginx's port, gunicorn's log), logs on failure."""
    if NGINX is None:
        pytest.skip("needs Debian's nginx (apt-get install nginx)")
    gunicorn_port, nginx_port = free_port(), free_port()
    env = child_env(
        DJANGO_DEBUG=0,
        WEB_CONCURRENCY=2,
        GUNICORN_BIND=f"127.0.0.1:{gunicorn_port}",
        GUNICORN_TIMEOUT=30,
        PROMETHEUS_MULTIPROC_DIR="",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    gunicorn = Process(
        "gunicorn",
        [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")],
        env,
        tmp_path,
    )
    (tmp_path / "nginx").mkdir()
    config = nginx_config(tmp_path / "nginx", nginx_port, gunicorn_port)
    check = Process(
        "nginx-check", [NGINX, "-t", "-c", str(config), "-e", "stderr"], {}, tmp_path
    ).start()
    assert check.proc.wait(30) == 0, check.log()
    nginx = Process(
        "nginx",
        [NGINX, "-c", str(config), "-e", "stderr", "-g", "daemon off;"],
        {"PATH": "/usr/sbin:/usr/bin:/bin"},
        tmp_path,
    )
    url = f"http://127.0.0.1:{nginx_port}"
    try:
        gunicorn.start()
        nginx.start()

        wait_for(lambda: serves_live(url), timeout=60, what="gunicorn behind nginx to answer /live")
        yield url, nginx_port, gunicorn.log
    except AssertionError:
        print(f"--- gunicorn log (tail)\n{gunicorn.log()[-3000:]}")
        print(f"--- nginx log (tail)\n{nginx.log()[-3000:]}")
        raise
    finally:
        nginx.stop()
        gunicorn.stop()


def test_live_answers_through_nginx_while_slow_clients_hold_connections(tmp_path):
    stop = threading.Event()
    clients = []
    with proxied_site(tmp_path) as (url, nginx_port, gunicorn_log):
        try:
            _slow_clients_cannot_starve_live(url, nginx_port, gunicorn_log, stop, clients)
        finally:
            stop.set()
            for client in clients:
                client.join(5)


def _slow_clients_cannot_starve_live(url, nginx_port, gunicorn_log, stop, clients):
    # A body over VELO_MAX_BODY_BYTES is refused by nginx from its Content-Length alone.
    with socket.create_connection(("127.0.0.1", nginx_port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/jobs/orders/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")

    slow_headers = b"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client\r\n\r\n"
    short_body = (
        b"POST /api/v1/jobs/orders/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nX-Slow: yes\r\n\r\n[{}, {}"
    )
    clients.extend(SlowClient(nginx_port, stop, request=slow_headers) for _ in range(4))
    clients.extend(
        SlowClient(nginx_port, stop, request=short_body, body_short_by=1000, interval=0.01)
        for _ in range(2)
    )
    for client in clients:
        client.start()
    time.sleep(1.0)  # every slow client connected and dripping

    results = []
    for _ in range(20):
        started = time.monotonic()
        try:
            status = requests.get(f"{url}/live", timeout=2).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        results.append((status, round(time.monotonic() - started, 2)))
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))

    assert all(client.is_alive() for client in clients), "a slow client gave up early"
    assert [status for status, _ in results] == [200] * 20, results
    # nginx never passed on the cut-off bodies: gunicorn saw no POST at all.
    assert "POST /api/v1/jobs/orders/batches" not in gunicorn_log()


def test_through_the_proxy_on_its_own_port_logins_and_status_urls_keep_the_port(
    tmp_path, django_user_model
):
    """nginx passes Host with its port: Django's CSRF origin check and the URLs it builds
    see the address the browser used (with `$host`, the port was dropped: a login 403)."""
    job = Job.objects.create(name="orders", processor="json_schema", config={"schema": {}})
    _, token = create_token("proxy", jobs=[job])
    django_user_model.objects.create_superuser("ops", "ops@example.com", "a long pass phrase 9")
    with proxied_site(tmp_path) as (url, _, _log):
        browser = requests.Session()
        browser.get(f"{url}/admin/login/", timeout=10).raise_for_status()
        answer = browser.post(
            f"{url}/admin/login/?next=/admin/",
            data={
                "username": "ops",
                "password": "a long pass phrase 9",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Origin": url, "Referer": f"{url}/admin/login/"},
            timeout=10,
            allow_redirects=False,
        )
        assert (answer.status_code, answer.headers["Location"]) == (302, "/admin/"), answer.text
        submitted = requests.post(
            f"{url}/api/v1/jobs/orders/batches",
            json=[{"symbol": "ACME"}],
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["status_url"].startswith(f"{url}/api/v1/batches/")


def test_the_proxy_keeps_metrics_and_health_inside(tmp_path):
    """Only the proxy is published: what /metrics and /health tell (job names, error
    templates, DLQ sizes) stays for Prometheus and the probes, which reach web directly."""
    with proxied_site(tmp_path) as (url, _, _log):
        assert requests.get(f"{url}/metrics", timeout=10).status_code == 403
        assert requests.get(f"{url}/health", timeout=10).status_code == 403
        assert requests.get(f"{url}/live", timeout=10).status_code == 200
        assert requests.get(f"{url}/ready", timeout=10).status_code in (200, 503)
