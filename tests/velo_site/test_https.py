"""Behind a TLS-terminating proxy (VELO_HTTPS=1): HTTPS links, logins that pass CSRF, the
deploy check clean, and no development secret key in production (issue 13, finding 5)."""

import json
import os
import runpy
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from dlq.models import Job
from dlq.tokens import create_token
from tests.conftest import GOOD
from tests.integration.harness import ROOT

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
# What the proxy adds: the scheme it was reached by, the client's address, the Host asked for.
PROXIED = {
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_FOR": "203.0.113.7",
    "HTTP_HOST": "testserver",
}
SETTINGS = str(ROOT / "velo_site" / "settings.py")


def settings_from(monkeypatch, **environ):
    """velo_site/settings.py run afresh in this environment (the test run's own plus these)."""
    with monkeypatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        return runpy.run_path(SETTINGS)


@pytest.fixture
def behind_tls(monkeypatch):
    """The test run's settings with what VELO_HTTPS=1 changes in them."""
    plain = settings_from(monkeypatch)
    https = settings_from(monkeypatch, VELO_HTTPS="1")
    changed = {
        name: value
        for name, value in https.items()
        if name.isupper() and value != plain.get(name) and name != "DATABASES"
    }
    with override_settings(**changed):
        yield changed


def test_a_batch_submitted_through_the_tls_proxy_gets_an_https_status_url(client, behind_tls):
    job = Job.objects.create(name="orders", processor="demo.trades")
    _, token = create_token("ingest", jobs=[job])

    response = client.post(
        "/api/v1/jobs/orders/batches",
        json.dumps([GOOD]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **PROXIED,
    )

    assert response.status_code == 202, response.content
    batch_id = response.json()["batch_id"]
    assert response.json()["status_url"] == f"https://testserver/api/v1/batches/{batch_id}"
    assert response["Location"] == response.json()["status_url"]


@pytest.fixture
def browser():
    """A client that, like a browser, gets CSRF checked (Django's test client skips it)."""
    return Client(enforce_csrf_checks=True)


def login_through_the_proxy(client, *, origin="https://testserver"):
    """The admin's login form fetched and posted as a browser does through the proxy."""
    client.get("/admin/login/", **PROXIED)
    token = client.cookies["csrftoken"].value
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": token},
        HTTP_ORIGIN=origin,
        HTTP_REFERER=f"{origin}/admin/login/",
        **PROXIED,
    )


def test_the_admin_login_through_the_tls_proxy_passes_csrf_with_secure_cookies(
    browser, django_user_model, behind_tls
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    browser.get("/admin/login/", **PROXIED)
    assert browser.cookies["csrftoken"]["secure"]

    response = login_through_the_proxy(browser)

    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert browser.cookies["sessionid"]["secure"]
    assert browser.cookies["sessionid"]["httponly"]
    assert browser.get("/admin/", **PROXIED).status_code == 200


def test_a_login_posted_from_another_origin_is_still_refused(
    browser, django_user_model, behind_tls
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)

    assert login_through_the_proxy(browser, origin="https://evil.example").status_code == 403


def test_an_origin_the_proxy_does_not_pass_as_host_can_be_trusted(
    browser, django_user_model, monkeypatch
):
    """A proxy that rewrites Host: DJANGO_CSRF_TRUSTED_ORIGINS names the public origin."""
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    public = "https://velo.example.com"
    trusted = settings_from(
        monkeypatch, VELO_HTTPS="1", DJANGO_CSRF_TRUSTED_ORIGINS=f"{public},https://other.example"
    )["CSRF_TRUSTED_ORIGINS"]
    assert trusted == [public, "https://other.example"]
    with override_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), CSRF_TRUSTED_ORIGINS=trusted
    ):
        assert login_through_the_proxy(browser, origin=public).status_code == 302


def test_plain_http_is_redirected_to_https_except_the_probes_and_metrics(client, behind_tls):
    response = client.get("/admin/login/")
    assert (response.status_code, response["Location"]) == (
        301,
        "https://testserver/admin/login/",
    )
    for path in ("/live", "/metrics"):
        assert client.get(path).status_code == 200, path
    for path in ("/ready", "/health"):
        assert client.get(path).status_code in (200, 503), path
    assert client.get("/live", **PROXIED)["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )


def test_hsts_is_tunable_from_the_environment(monkeypatch):
    tuned = settings_from(
        monkeypatch,
        VELO_HTTPS="1",
        VELO_HSTS_SECONDS="600",
        VELO_HSTS_INCLUDE_SUBDOMAINS="0",
        VELO_HSTS_PRELOAD="1",
        DJANGO_USE_X_FORWARDED_HOST="1",
    )
    assert tuned["SECURE_HSTS_SECONDS"] == 600
    assert tuned["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert tuned["SECURE_HSTS_PRELOAD"] is True
    assert tuned["USE_X_FORWARDED_HOST"] is True
    plain = settings_from(monkeypatch)
    assert plain["SECURE_HSTS_SECONDS"] == 0
    assert plain["SECURE_PROXY_SSL_HEADER"] is None
    assert plain["USE_X_FORWARDED_HOST"] is False


def production_environment(**extra):
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "VELO_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="velo_site.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="velo.example.com",
        # Broker folders of the test run's own, not the checkout's var/broker.
        VELO_BROKER_DIR=os.environ["VELO_BROKER_DIR"],
    )
    env.update(extra)
    return env


def manage(*argv, env):
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_is_clean_behind_tls():
    """DATABASE_URL unset: the embedded SQLite default, as a first deployment has it."""
    done = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_environment(VELO_HTTPS="1")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_the_deploy_check_without_tls_says_what_is_missing():
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=production_environment())
    assert done.returncode != 0
    for finding in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert finding in done.stderr, finding


@pytest.mark.parametrize(
    "key",
    [None, "", "velo-dev-only-insecure-key", "velo-test-only-insecure-key", "django-insecure-x"],
)
def test_production_refuses_a_missing_or_development_secret_key(monkeypatch, key):
    monkeypatch.setenv("DJANGO_DEBUG", "0")
    if key is None:
        monkeypatch.delenv("DJANGO_SECRET_KEY")
    else:
        monkeypatch.setenv("DJANGO_SECRET_KEY", key)
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        runpy.run_path(SETTINGS)


def test_development_keeps_its_default_key(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "1")
    monkeypatch.delenv("DJANGO_SECRET_KEY")
    assert runpy.run_path(SETTINGS)["SECRET_KEY"] == "velo-dev-only-insecure-key"
