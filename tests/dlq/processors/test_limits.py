"""Time limits as records run (dlq.processors.limits): in this process, no worker.

pytest runs tests on the main thread, where the soft limit (SIGALRM) works as in
a prefork pool process; a test on a thread of its own shows the fallback.
"""

import threading
import time

import pytest

from dlq.processors.limits import TimeLimits
from dlq.processors.runner import run_records

pytestmark = pytest.mark.django_db


def run(job, records, **limits):
    limits.setdefault("record_timeout", job.record_timeout)
    return run_records(
        job, records, range(len(records)), batch_id=1, attempt=1, limits=TimeLimits(**limits)
    )


@pytest.fixture
def hangs(make_job):
    return make_job(processor="test.hangs", record_timeout=0.5)


@pytest.mark.parametrize("how", ["sleep", "regex"])
def test_a_record_over_its_limit_fails_with_record_timeout_and_the_rest_run(hangs, how):
    result = run(hangs, [{}, {"hang": how}, {}])
    assert result.attempted == 3
    assert [(f.index, f.error_type) for f in result.failures] == [(1, "RecordTimeout")]
    assert "0.5 s" in result.failures[0].message
    assert result.left == ()


def test_a_blocking_socket_read_is_stopped_by_the_soft_limit(hangs, silent_server):
    result = run(hangs, [{"hang": "socket", "port": silent_server}, {}])
    assert [(f.index, f.error_type) for f in result.failures] == [(0, "RecordTimeout")]


def test_the_attempt_deadline_leaves_the_records_it_did_not_finish(hangs):
    records = [{"hang": "sleep", "seconds": 0.2}] * 10
    result = run(hangs, records, deadline=time.monotonic() + 0.5)
    assert 1 <= result.attempted < 10
    assert result.failures == []
    assert list(result.left) == list(range(result.attempted, 10))


def test_records_the_watchdog_stopped_fail_without_running(hangs):
    result = run(hangs, [{}, {"hang": "sleep"}, {}], timed_out={1: 0.5})
    assert [(f.index, f.error_type) for f in result.failures] == [(1, "RecordTimeout")]
    assert "watchdog" in result.failures[0].message


def test_off_the_main_thread_a_late_record_fails_once_it_returns(hangs):
    results = []
    thread = threading.Thread(
        target=lambda: results.append(run(hangs, [{"hang": "sleep", "seconds": 0.8}, {}]))
    )
    thread.start()
    thread.join()
    (result,) = results
    assert [(f.index, f.error_type) for f in result.failures] == [(0, "RecordTimeout")]
    assert "returned too late" in result.failures[0].message


def test_the_alarm_is_put_back_as_it_was(hangs):
    import signal

    before = signal.getsignal(signal.SIGALRM)
    run(hangs, [{"hang": "sleep", "seconds": 0.7}])
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
