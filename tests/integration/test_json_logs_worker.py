"""A Celery worker under VELO_LOG_FORMAT=json logs JSON: its own lines, the tasks' and Velo's;
a storm of failed records is a few lines."""

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
        # A storm: 1,000 records failing with two errors (SPEC §4, issue 14).
        Job.objects.create(name="storm", processor="demo.trades", failure_strategy="send_to_dlq")
        storm = api.submit("storm", [BAD, {"symbol": "", "price": 1}] * 500)["batch_id"]
        assert api.wait_until_final(storm)["failed"] == 1000
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
    # Three lines of each error group in full, then one line per group with the rest.
    storm_lines = [line for line in worker.log().splitlines() if "storm" in line]
    assert len(storm_lines) <= 10, storm_lines
    summaries = sorted(r["message"] for r in failed if "more failures like" in r["message"])
    assert len(summaries) == 2, summaries
    assert all(f"job storm: batch {storm} attempt 1: 497 more" in m for m in summaries), summaries
    text = [
        line for line in worker.log().splitlines() if line[:4].isdigit() or line.startswith("[20")
    ]
    assert text == [], text  # no line in the text formats (ours or Celery's)
