"""VELO_LOG_FORMAT=json: each log line of a Velo process is a JSON object (issue 13, finding 9)."""

import json
import os
import re
import subprocess
import sys

from tests.integration.harness import ROOT

# A Velo logger with an `extra` field, runserver's access logger, and a 404 (django.request).
SCRIPT = """
import logging
from django.test import Client
logging.getLogger("velo.records").warning("record %s failed", 7, extra={"job": "orders"})
logging.getLogger("django.server").info('"GET /live HTTP/1.1" 200 15')
Client().get("/no-such-page")
"""


def log_lines(**environ):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="velo_site.settings_test", **environ)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_json_logs_are_one_object_a_line_with_level_logger_and_message():
    records = [json.loads(line) for line in log_lines(VELO_LOG_FORMAT="json")]

    by_logger = {record["logger"]: record for record in records}
    failed = by_logger["velo.records"]
    assert (failed["level"], failed["message"], failed["job"]) == (
        "WARNING",
        "record 7 failed",
        "orders",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", failed["timestamp"])
    assert by_logger["django.server"]["message"] == '"GET /live HTTP/1.1" 200 15'
    assert by_logger["django.request"]["level"] == "WARNING"
    assert by_logger["django.request"]["message"].startswith("Not Found: /no-such-page")


def test_text_logs_stay_the_default():
    lines = log_lines()
    assert any(
        re.fullmatch(r"\S+ \S+ WARNING velo\.records record 7 failed", line) for line in lines
    ), lines
    for line in lines:
        assert not line.startswith("{"), line
