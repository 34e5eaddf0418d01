"""With VELO_LOG_FORMAT=json, gunicorn's own access and error lines are JSON too.

Velo's loggers follow the setting (tests/velo_site/test_json_logs.py); gunicorn formats its
access log and its master's lines itself, from deploy/gunicorn.conf.py, so a log shipper
behind a JSON-only pipeline would otherwise get two formats from one process.
"""

import json
import sys

import pytest

from tests.integration.harness import Process, child_env, free_port, serves_live, wait_for

from .promql import DEPLOY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_gunicorn_logs_json_lines_when_asked(tmp_path):
    port = free_port()
    env = child_env(
        DJANGO_DEBUG=0,
        WEB_CONCURRENCY=1,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        VELO_LOG_FORMAT="json",
    )
    gunicorn = Process(
        "gunicorn",
        [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")],
        env,
        tmp_path,
    )
    try:
        gunicorn.start()

        wait_for(
            lambda: serves_live(f"http://127.0.0.1:{port}"),
            timeout=60,
            what="gunicorn to answer /live",
        )
        wait_for(lambda: "/live" in gunicorn.log(), timeout=10, what="the access line")
    finally:
        gunicorn.stop()
    lines = [line for line in gunicorn.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, gunicorn's and Velo's
    access = [r for r in records if r.get("logger") == "gunicorn.access"]
    assert access and "GET /live" in access[0]["message"]
    assert any(r.get("logger") == "gunicorn.error" and r["level"] == "INFO" for r in records)
