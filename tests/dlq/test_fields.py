"""Batch records kept as JSON text come back exactly as they went in."""

import pytest
from django.db import connection

from dlq.fields import JSONTextField
from dlq.ingest import submit_batch
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


@pytest.mark.django_db
def test_a_submitted_batch_is_stored_as_the_text_its_check_wrote(make_job):
    """submit_batch hands the check's text to the field (StoredJSON): what is stored is
    exactly what the field would write, and the batch it returns holds the records."""
    records = [{**record, "nul": "ab"} for record in RECORDS]
    batch, _ = submit_batch(make_job(), records)

    with connection.cursor() as cursor:
        cursor.execute("SELECT records FROM dlq_batch WHERE id = %s", [batch.pk])
        (stored,) = cursor.fetchone()
    assert stored == JSONTextField().get_prep_value(list(records))
    assert batch.records == records and not isinstance(batch.records, str)
    assert Batch.objects.get(pk=batch.pk).records == records
