"""A child process the tests start and that never gets ready is stopped, not left behind:
a fixture that fails before its yield never reaches its teardown (under load, gunicorns whose
/live check timed out outlived their tests)."""

import sys

import pytest

from devtools.processes import ChildProcess, WaitTimedOut


def test_a_child_that_never_gets_ready_is_stopped(tmp_path):
    child = ChildProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], None, tmp_path / "log"
    )

    with pytest.raises(WaitTimedOut):
        child.start(ready=lambda: False, timeout=0.5)

    assert child.proc.poll() is not None
