"""Schemathesis against a real Velo web server: no 5xx, and every answer as the document says.

The server is `manage.py runserver` over the test database (tests.integration.harness),
with a job, DLQ entries and error groups for the generated requests to find, and a token
that may use every job and start requeues. Schemathesis runs every check it has
(`--checks all`: server errors, status codes, content types, headers and bodies against
the schemas, negative data refused, positive data accepted, auth not ignored, ...) with a
bounded number of examples per operation and a fixed seed, so a run is repeatable. The
stateful phase is left out: the document declares no links between operations.
tests/dlq/api/schemathesis.toml lists the few rules no schema can state.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlq.tokens import create_token
from tests.conftest import BAD, GOOD
from tests.dlq.factories import fail, schema_job
from tests.integration.harness import ROOT, WebServer, child_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
# A fixed seed keeps the suite repeatable; set these to explore further by hand.
MAX_EXAMPLES = int(os.environ.get("VELO_SCHEMATHESIS_EXAMPLES", "10"))
SEED = int(os.environ.get("VELO_SCHEMATHESIS_SEED", "13"))
# runserver's access log: `"POST /api/v1/jobs/orders/batches HTTP/1.1" 202 95`.
ACCESS = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    transactional_db, run_batch, tmp_path
):
    orders = schema_job("orders")  # the name the document's examples use
    fail(orders, 3)
    run_batch(orders, [GOOD, BAD])
    _, token = create_token("schemathesis", can_requeue=True)
    server = WebServer(tmp_path).start()
    try:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.url}/api/v1/openapi.json",
                "--url",
                server.url,
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            cwd=ROOT,
            env=child_env(SCHEMATHESIS_HOOKS="tests.dlq.api.schemathesis_hooks", NO_COLOR="1"),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.stop()
    output = run.stdout + run.stderr
    # A failing case can carry a body of megabytes: its head and the summary are enough.
    shown = output if len(output) < 40000 else f"{output[:30000]}\n[...]\n{output[-8000:]}"
    assert run.returncode == 0, f"{shown}\n--- server log\n{server.log()[-5000:]}"
    # What the server itself logged: many answers, the happy paths among them, no 5xx.
    answers = [(m[1], m[2].partition("?")[0], int(m[3])) for m in ACCESS.finditer(server.log())]
    assert len(answers) > 500, len(answers)
    assert [a for a in answers if a[2] >= 500] == []
    statuses = {(method, status) for method, _, status in answers}
    assert {("POST", 202), ("GET", 200), ("POST", 400), ("GET", 401)} <= statuses
