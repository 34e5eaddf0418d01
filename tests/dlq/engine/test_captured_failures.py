"""What the DLQ stores of each failed record of a storm (SPEC: payload, error, traceback, exactly).

A batch's failures are captured once per distinct failure (processors.runner.Capture); each
entry still holds its own record's traceback, as Python formats it, and its own masking.
"""

import traceback

import pytest

from dlq import redaction
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import DLQEntry, Job
from dlq.processors import processor
from dlq.redaction import MASK
from tests.dlq.processors.test_runner import _unmarked

pytestmark = pytest.mark.django_db

_RAISED = {}


def _parse(message):
    raise ValueError(message)


def _look_up(message):
    raise ValueError(message) if message else ValueError()  # the same error, from elsewhere


def _log_in(message):
    raise ValueError(message or "password=swordfish")  # its source line shows a secret


SITES = {"parse": _parse, "look_up": _look_up, "log_in": _log_in}


@processor("capture.two_sites", transactional=False)
def _two_sites(record, ctx):
    """Fails at one of two sites, with the record's message; keeps what it raised."""
    try:
        SITES[record["site"]](record["message"])
    except Exception as exc:
        _RAISED[record["n"]] = exc
        raise


def _stored(records):
    job = Job.objects.create(
        name="storm", processor="capture.two_sites", failure_strategy="send_to_dlq"
    )
    records = [{"n": n, **record} for n, record in enumerate(records)]
    _RAISED.clear()
    batch, _ = submit_batch(job, records)
    process_batch(batch.pk)
    entries = {e.index: e for e in DLQEntry.objects.filter(batch=batch)}
    assert len(entries) == len(records)
    return job, records, entries


def _python_traceback(exc):
    return _unmarked("".join(traceback.format_exception(exc)))


def test_each_stored_traceback_is_its_own_exceptions_as_python_formats_it():
    messages = [
        "Invalid JSON in 'price' field",
        "Invalid JSON in 'price' field",  # the same failure again
        "price 'n/a' in row 7",
        "prix invalide : « n/a »",
        "shipping=fast is not a venue",  # looks like a pair whose key names `pin`
        "two\nlines",
        "",
    ]
    records = [
        {"site": site, "message": message} for site in ("parse", "look_up") for message in messages
    ]
    _, records, entries = _stored(records)
    for n, record in enumerate(records):
        entry, exc = entries[n], _RAISED[n]
        assert entry.full_traceback == _python_traceback(exc), record
        assert entry.error_message == (str(exc) or type(exc).__name__)
    assert entries[0].full_traceback == entries[1].full_traceback
    assert "in _parse\n" in entries[0].full_traceback
    assert "in _look_up\n" in entries[len(messages)].full_traceback


def test_a_records_secret_is_masked_in_its_failure_and_only_in_its_own():
    records = [
        {"site": "parse", "message": "login failed for hunter22", "password": "hunter22"},
        {"site": "parse", "message": "login failed for hunter22"},  # its record holds no secret
        {"site": "parse", "message": "refused: token=abc123"},
        {"site": "look_up", "message": "login failed for hunter22", "password": "hunter22"},
        {"site": "log_in", "message": "no such user"},
        {"site": "log_in", "message": "no such user"},
    ]
    job, records, entries = _stored(records)
    redactor = redaction.for_job(job)
    for n, record in enumerate(records):
        mask = redactor.masker(record)
        entry = entries[n]
        assert entry.full_traceback == mask(_python_traceback(_RAISED[n]))
        assert entry.error_message == mask(str(_RAISED[n]))
    assert entries[0].error_message == f"login failed for {MASK}"
    assert entries[0].full_traceback.endswith(f"ValueError: login failed for {MASK}\n")
    assert "hunter22" not in entries[0].full_traceback + entries[3].full_traceback
    assert entries[1].error_message == "login failed for hunter22"
    assert entries[1].full_traceback.endswith("ValueError: login failed for hunter22\n")
    assert entries[2].error_message == f"refused: token={MASK}"
    assert entries[2].full_traceback.endswith(f"ValueError: refused: token={MASK}\n")
    assert f'ValueError(message or "password={MASK}")' in entries[4].full_traceback
    assert entries[5].full_traceback == entries[4].full_traceback
