"""The runner's cheap traceback text reads as Python's own (less 3.11's ^^^ markers)."""

import re
import traceback

import pytest

from dlq.processors.runner import Capture, traceback_text


class PipelineError(Exception):
    pass


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def _raise_nested(exc):
    def inner():
        raise exc

    inner()


def _chained():
    try:
        raise KeyError("price")
    except KeyError as exc:
        raise ValueError("Invalid JSON in 'price' field") from exc


def _noted():
    exc = ValueError("bad")
    exc.add_note("while reading row 7")
    raise exc


CASES = [
    lambda: _raise_nested(ValueError("Invalid JSON in 'price' field")),
    lambda: _raise_nested(PipelineError("Timeout after 3001 ms")),
    lambda: _raise_nested(PipelineError()),
    lambda: _raise_nested(KeyError("symbol")),
    lambda: _raise_nested(Unprintable()),
    lambda: compile("1 +", "<record>", "exec"),
    _chained,
    _noted,
]


@pytest.mark.parametrize("case", CASES)
def test_traceback_text_matches_pythons_formatting(case):
    with pytest.raises(Exception) as caught:
        case()
    exc = caught.value
    try:
        text = str(exc)
    except Exception:
        text = "<exception str() failed>"
    assert _unmarked(traceback_text(exc, text)) == _unmarked(
        "".join(traceback.format_exception(exc))
    )


def _unmarked(text):
    """Without the lines of carets that point into a source line."""
    return re.sub(r"(?m)^ *[~^]+ *\n", "", text)


def test_a_failure_keeps_the_message_type_and_traceback():
    with pytest.raises(PipelineError) as caught:
        _raise_nested(PipelineError("Timeout after 3001 ms"))
    failure = Capture().failure(4, caught.value)
    assert (failure.index, failure.error_type) == (4, "PipelineError")
    assert failure.message == "Timeout after 3001 ms"
    assert failure.traceback.endswith(
        "in inner\n    raise exc\n"
        "tests.dlq.processors.test_runner.PipelineError: Timeout after 3001 ms\n"
    )


def test_an_unprintable_exception_still_fails_its_record_clearly():
    with pytest.raises(Unprintable) as caught:
        _raise_nested(Unprintable())
    assert Capture().failure(0, caught.value).message == "<unprintable Unprintable>"
