"""Record checks: flat rows cleared fast, nesting limits kept exactly."""

from collections import OrderedDict

import pytest

from dlq.ingest.records import MAX_DEPTH, InvalidRecords, validate

FLAT = {"symbol": "ACME", "price": 1.5, "qty": 3, "ok": True, "note": None}


def nested(levels):
    """A record `levels` deep: {"a": {"a": ... 1}}."""
    value = 1
    for _ in range(levels - 1):
        value = {"a": value}
    return {"a": value}


@pytest.mark.parametrize(
    "records",
    [
        [FLAT] * 500,
        [FLAT, nested(MAX_DEPTH - 1), FLAT],
        [nested(MAX_DEPTH - 1)],
        [{"list": [[1, 2], [3]]}, FLAT],
        [OrderedDict(inner=OrderedDict(x=1))],
    ],
)
def test_storable_records_are_accepted(records):
    validate(records)


@pytest.mark.parametrize(
    "records, index",
    [
        ([FLAT] * 10 + [nested(MAX_DEPTH + 1)] + [FLAT] * 10, 10),
        ([nested(MAX_DEPTH + 1)], 0),
        ([FLAT, {"rows": [nested(MAX_DEPTH)]}], 1),
        ([FLAT, OrderedDict(x=nested(MAX_DEPTH))], 1),
    ],
)
def test_a_record_nested_too_deeply_among_flat_ones_is_named(records, index):
    with pytest.raises(InvalidRecords) as refused:
        validate(records)
    assert "nested too deeply" in str(refused.value)
    assert refused.value.detail["index"] == index
