"""The chaos soak: real load through real processes while everything they depend on fails.

A client submits batches over HTTP with an Idempotency-Key and retries each until it is
accepted, while the soak SIGKILLs workers, beat and a web worker, kills Redis for seconds,
restarts PostgreSQL and sends records that hang (devtools.soak). The database and the
broker are copies of the soak's own on free ports, never the shared ones. Afterwards every
accepted batch is accounted for exactly once: one batch row per key, every batch finished,
one DLQ entry per failed record, the job counters equal to the rows, and /metrics equal to
the counters.
"""

from collections import Counter

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from devtools import soak as chaos
from devtools.services import ScratchRedis, postgres_available

pytestmark = [
    pytest.mark.soak,
    pytest.mark.worker,
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the soak runs in the PostgreSQL + Redis leg (it brings its own copies of both)",
    ),
    pytest.mark.skipif(bool(postgres_available()), reason=postgres_available() or "ok"),
    pytest.mark.skipif(bool(ScratchRedis.available()), reason=ScratchRedis.available() or "ok"),
]


@pytest.fixture
def soak(tmp_path):
    started = chaos.Soak(tmp_path)
    try:
        yield started
    finally:
        started.stop()
        for process in started.processes.values():
            print(f"--- {process.name} log (tail)\n{process.log()[-1500:]}")


def test_chaos_soak_loses_nothing_and_counts_everything_once(soak):
    token = chaos.start(soak)
    outcome = chaos.run(soak, token, faults=True)
    accepted, answers = outcome.accepted, outcome.answers
    print(f"faults: {outcome.faults}")
    print(f"client answers: {dict(answers)}; {len(accepted)} batches accepted")
    print(f"restarted by the supervisor after exiting by themselves: {outcome.restarts}")
    print(f"all work done {outcome.settled_after_last_fault:.1f} s after the last fault")

    assert outcome.crashed is None, outcome.crashed
    assert outcome.unexpected == [], outcome.unexpected  # only 202 and 503: never a 500
    assert len(accepted) > 50, answers
    assert len(outcome.faults) == 8
    assert 500 not in answers, answers

    # One batch row per accepted key, and it is the one the client was told about.
    batches = {
        key: (batch_id, job, count, status, processed, failed, dlq_added)
        for key, batch_id, job, count, status, processed, failed, dlq_added in soak.rows(
            "SELECT b.idempotency_key, b.id, j.name, b.record_count, b.status, b.processed,"
            " b.failed, b.dlq_added FROM dlq_batch b JOIN dlq_job j ON j.id = b.job_id"
        )
    }
    assert set(batches) == set(accepted)
    entries = Counter(
        dict(soak.rows("SELECT batch_id, count(*) FROM dlq_dlqentry GROUP BY batch_id"))
    )
    wrong = {}
    for key, sent in accepted.items():
        seen = (*batches[key], entries[batches[key][0]])
        if seen != _expected(sent):
            wrong[key] = (seen, _expected(sent))
    assert wrong == {}, f"batches not counted exactly once: {list(wrong.items())[:5]}"
    assert (
        soak.rows("SELECT batch_id, index FROM dlq_dlqentry GROUP BY 1, 2 HAVING count(*) > 1")
        == []
    )

    # The job counters equal the rows, and /metrics equals the counters.
    counters = soak.rows(
        "SELECT j.name, c.records_processed, c.records_failed, c.dlq_added,"
        " c.batches_succeeded + c.batches_partial + c.batches_failed,"
        " (SELECT sum(processed) FROM dlq_batch WHERE job_id = j.id),"
        " (SELECT sum(failed) FROM dlq_batch WHERE job_id = j.id),"
        " (SELECT count(*) FROM dlq_dlqentry WHERE job_id = j.id),"
        " (SELECT count(*) FROM dlq_batch WHERE job_id = j.id)"
        " FROM dlq_job j JOIN dlq_jobcounters c ON c.job_id = j.id"
    )
    for name, processed, failed, added, finished, *from_rows in counters:
        assert [processed, failed, added, finished] == from_rows, name
    scraped = _scrape(soak.url)
    for name, processed, failed, added, _, *_rest in counters:
        assert scraped[("velo_records_processed_total", name)] == processed
        assert scraped[("velo_records_failed_total", name)] == failed
        assert scraped[("velo_dlq_entries_added_total", name)] == added


def _expected(sent):
    """(batch id, job, records, status, processed, failed, dlq_added, entries) of an accepted
    batch, from what the client sent: a failed record is one entry and one row per attempt
    (soak-retry tries its failures once more)."""
    tries = 2 if sent.job == "soak-retry" and sent.bad else 1
    status = "succeeded" if sent.bad == 0 else "partial"
    processed = sent.records + (tries - 1) * sent.bad
    return (
        sent.batch_id,
        sent.job,
        sent.records,
        status,
        processed,
        tries * sent.bad,
        sent.bad,
        sent.bad,
    )


def _scrape(url):
    text = requests.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, sample.labels.get("job_name")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job_name", "").startswith("soak-")
    }
