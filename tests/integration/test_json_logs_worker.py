"""A Celery worker under VELO_LOG_FORMAT=json logs JSON: its own lines, the tasks' and Velo's."""

import json

import pytest

from dlq.models import Job
from tests.conftest import BAD, GOOD

from .harness import Worker

pytestmark = pytest.mark.worker


def test_a_worker_logs_one_json_object_a_line(api, tmp_path):
    worker = Worker(tmp_path, beat=True, VELO_LOG_FORMAT="json").start()
    try:
        Job.objects.create(name="orders", processor="demo.trades", failure_strategy="send_to_dlq")
        batch = api.submit("orders", [GOOD, BAD])["batch_id"]
        assert api.wait_until_final(batch)["status"] == "partial"
    finally:
        worker.stop()

    # The banner Celery prints at start is not a log line; every line that starts with "{" is
    # one and must parse.
    records = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    loggers = {record["logger"] for record in records}
    assert {"celery.apps.worker", "celery.app.trace", "celery.beat"} <= loggers, loggers
    assert any(r["message"].endswith("ready.") for r in records)
    failed = [r for r in records if r["logger"] == "velo.records"]
    assert failed and all(r["level"] == "WARNING" for r in failed), failed
    text = [
        line for line in worker.log().splitlines() if line[:4].isdigit() or line.startswith("[20")
    ]
    assert text == [], text  # no line in the text formats (ours or Celery's)
