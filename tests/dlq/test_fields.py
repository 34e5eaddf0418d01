"""Batch records kept as JSON text come back exactly as they went in."""

import pytest

from dlq.fields import JSONTextField
from dlq.models import Batch

RECORDS = [
    {"symbol": "ÄCMÉ", "price": 1.5, "qty": 3, "tags": ["a", "b"], "note": None, "ok": True},
    {"nested": {"deep": [{"x": 1}]}, "emoji": "🚀", "quote": 'it\'s "fine"', "nul": "a\x00b"},
]


@pytest.mark.django_db
def test_records_round_trip_through_the_database(make_job):
    batch = Batch.objects.create(job=make_job(), records=RECORDS, record_count=len(RECORDS))
    assert Batch.objects.get(pk=batch.pk).records == RECORDS


def test_text_from_a_form_is_parsed_and_bad_json_is_refused():
    field = JSONTextField()
    assert field.to_python('[{"a": 1}]') == [{"a": 1}]
    with pytest.raises(Exception, match="not valid JSON"):
        field.to_python("[{")
