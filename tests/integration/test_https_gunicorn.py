"""Velo under gunicorn with VELO_HTTPS=1, reached as a TLS-terminating proxy reaches it:
plain-HTTP probes answer, everything else is sent to HTTPS, and through the proxy's headers
the admin login passes CSRF and the API hands out https:// links (issue 13, finding 5)."""

import re
import sys

import pytest
import requests

from dlq.models import Job
from dlq.tokens import create_token
from tests.conftest import GOOD

from .harness import Process, child_env, free_port, serves_live, wait_for

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    port = free_port()
    env = child_env(DJANGO_DEBUG="0", VELO_HTTPS="1", VELO_METRICS_TOKEN="")
    argv = [sys.executable, "-m", "gunicorn", "velo_site.wsgi:application"]
    argv += ["--bind", f"127.0.0.1:{port}", "--workers", "1"]
    server = Process("gunicorn", argv, env, tmp_path).start()
    url = f"http://127.0.0.1:{port}"

    try:
        wait_for(lambda: serves_live(url), timeout=60, what="gunicorn to answer")
        yield url
    finally:
        server.stop()


def cookie(response, name):
    """A cookie's value and whether it is Secure, from the Set-Cookie headers themselves
    (requests would never send a Secure cookie back over plain HTTP, as the proxy does)."""
    for header in response.raw.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header.split(";")[0].split("=", 1)[1], "; secure" in header.lower()
    raise AssertionError(f"no {name} cookie in {response.headers}")


def test_behind_a_tls_proxy_under_gunicorn(gunicorn, django_user_model):
    url, host = gunicorn, gunicorn.removeprefix("http://")
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)

    for probe in ("/live", "/ready", "/health", "/metrics"):
        response = requests.get(f"{url}{probe}", allow_redirects=False, timeout=10)
        assert response.status_code in (200, 503), probe
    plain = requests.get(f"{url}/admin/login/", allow_redirects=False, timeout=10)
    assert (plain.status_code, plain.headers["Location"]) == (301, f"https://{host}/admin/login/")

    form = requests.get(f"{url}/admin/login/", headers=proxied, timeout=10)
    assert form.status_code == 200
    assert form.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    csrf, secure = cookie(form, "csrftoken")
    assert secure
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    login = requests.post(
        f"{url}/admin/login/?next=/admin/",
        data={"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={
            **proxied,
            "Origin": f"https://{host}",
            "Referer": f"https://{host}/admin/login/",
            "Cookie": f"csrftoken={csrf}",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert (login.status_code, login.headers.get("Location")) == (302, "/admin/"), login.text
    session, secure = cookie(login, "sessionid")
    assert secure
    admin = requests.get(
        f"{url}/admin/", headers={**proxied, "Cookie": f"sessionid={session}"}, timeout=10
    )
    assert admin.status_code == 200 and "Log out" in admin.text

    job = Job.objects.create(name="orders", processor="demo.trades")
    _, bearer = create_token("ingest", jobs=[job])
    submitted = requests.post(
        f"{url}/api/v1/jobs/orders/batches",
        json=[GOOD],
        headers={**proxied, "Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["status_url"].startswith(f"https://{host}/api/v1/batches/")
