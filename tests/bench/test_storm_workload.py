"""The storm figures measure what they say: figure 9's records all fail, figure 9b's fail in
1,000 messages that the fingerprint keeps apart (not one group by number normalisation)."""

import logging

import pytest

from bench.figures.e2e import BATCH
from bench.figures.storm import MESSAGES, many_batches, records
from bench.processors import many_errors
from demo.processors import trades
from dlq.processors import ProcessorContext
from errors.fingerprint import normalize

CTX = ProcessorContext(job=None, config={}, batch_id=1, attempt=1, logger=logging.getLogger())


def _messages(processor, batch):
    out = []
    for record in batch:
        try:
            processor(record, CTX)
        except Exception as exc:
            out.append(str(exc))
    return out


def test_the_storm_fails_every_record_and_its_reference_none():
    assert len(_messages(trades, records(fail_every=1))) == BATCH
    assert _messages(trades, records(fail_every=None)) == []


def test_many_groups_fail_one_percent_in_a_thousand_templates():
    batches = many_batches()
    failed = [_messages(many_errors, batch) for batch in batches]
    assert all(len(each) == BATCH // 100 for each in failed)
    messages = [m for each in failed for m in each]
    assert len({normalize(m) for m in messages}) == MESSAGES == len(messages)


@pytest.mark.django_db
def test_the_thousand_messages_make_a_thousand_groups():
    from django.utils import timezone

    from errors.services import Failure, group_failures

    messages = [m for batch in many_batches() for m in _messages(many_errors, batch)]
    groups = group_failures(
        "bench-storm-many", [Failure("RecordInvalid", m) for m in messages], now=timezone.now()
    )
    assert len({g.pk for g in groups}) == MESSAGES
