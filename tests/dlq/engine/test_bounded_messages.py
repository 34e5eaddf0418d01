"""A record failing with a huge message stores, groups and logs a bounded one (issue 13 §4)."""

import logging

import pytest

from dlq import history
from dlq.models import DLQEntry, Job
from errors.models import ErrorGroup, ErrorOccurrence
from tests.dlq.factories import fail_with

pytestmark = pytest.mark.django_db

FIVE_MIB = 5 * 1024 * 1024


@pytest.fixture
def job():
    return Job.objects.create(
        name="huge", processor="test.fails_with", failure_strategy="send_to_dlq"
    )


def test_a_5_mib_message_is_stored_truncated_with_its_original_length(job, settings):
    settings.VELO_MAX_ERROR_MESSAGE_CHARS = 2000
    settings.VELO_MAX_TRACEBACK_CHARS = 16 * 1024
    fail_with(job, ["x" * FIVE_MIB])

    entry = DLQEntry.objects.get(job=job)
    assert len(entry.error_message) <= 2000
    assert entry.error_message.startswith("x" * 1000)
    assert entry.error_message.endswith(f"… [truncated, {FIVE_MIB} characters]")
    assert entry.error_message_length == FIVE_MIB
    assert len(entry.full_traceback) <= 16 * 1024
    # The last frame and the exception's line are kept.
    assert "Traceback (most recent call last):" in entry.full_traceback
    assert "in fails_with" in entry.full_traceback
    assert entry.full_traceback.rstrip().endswith("characters]")

    [original] = history.of_entry(entry)
    assert len(original.error_message) <= 2000
    group = ErrorGroup.objects.get(job_name=job.name)
    assert len(group.last_message) <= 2000
    assert len(group.template) <= 2000
    assert len(ErrorOccurrence.objects.get(group=group).message) <= 2000


def test_a_short_message_is_kept_whole_with_its_length(job):
    fail_with(job, ["Missing required column 'symbol'"])
    entry = DLQEntry.objects.get(job=job)
    assert entry.error_message == "Missing required column 'symbol'"
    assert entry.error_message_length == len(entry.error_message)


def test_the_worker_log_line_of_a_failed_record_is_capped(job, settings, caplog):
    settings.VELO_MAX_LOGGED_MESSAGE_CHARS = 500
    with caplog.at_level(logging.WARNING, logger="velo.records"):
        fail_with(job, ["y" * FIVE_MIB])
    [line] = [r.getMessage() for r in caplog.records if r.name == "velo.records"]
    assert "record 0 of batch" in line
    assert len(line) < 700
    assert line.endswith(f"… [truncated, {FIVE_MIB} characters]")
