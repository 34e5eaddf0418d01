"""json_schema runs its patterns on RE2: catastrophic patterns for Python's `re` answer at
once (the record is judged, not timed out), and patterns RE2 cannot run are refused."""

import pytest

from dlq.processors.builtin import check_schema_config
from dlq.processors.limits import TimeLimits
from dlq.processors.runner import run_records

pytestmark = pytest.mark.django_db

EVIL = "^(a+)+$"
VICTIM = "a" * 40 + "!"


def judge(make_job, schema, records):
    job = make_job("schema", processor="json_schema", config={"schema": schema})
    # Were any pattern run on `re`, it would run for hours: the 5 s limit would fail it
    # as RecordTimeout instead of the record being judged on its merits.
    limits = TimeLimits(record_timeout=5)
    result = run_records(job, records, range(len(records)), batch_id=1, attempt=1, limits=limits)
    return [(f.index, f.error_type, f.message) for f in result.failures]


def test_a_catastrophic_pattern_is_judged_at_once(make_job):
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": EVIL}}}
    assert judge(make_job, schema, [{"code": VICTIM}, {"code": "aaaa"}]) == [
        (0, "RecordInvalid", f"Field 'code': does not match pattern {EVIL!r}")
    ]


def test_catastrophic_pattern_properties_are_judged_at_once(make_job):
    schema = {
        "type": "object",
        "patternProperties": {EVIL: {"type": "integer"}},
        "additionalProperties": False,
    }
    failures = judge(make_job, schema, [{VICTIM: 1}, {"aaa": "x"}, {"aaa": 1}])
    assert [(i, t) for i, t, _ in failures] == [(0, "RecordInvalid"), (1, "RecordInvalid")]
    assert failures[0][2] == f"Field '{VICTIM}': not allowed (additionalProperties)"
    assert failures[1][2] == "Field 'aaa': not of type 'integer'"


def test_property_names_patterns_run_on_re2_too(make_job):
    schema = {"type": "object", "propertyNames": {"pattern": EVIL}}
    failures = judge(make_job, schema, [{VICTIM: 1}, {"aaa": 1}])
    assert [(i, t) for i, t, _ in failures] == [(0, "RecordInvalid")]


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "string", "pattern": r"(a)\1"}, "at pattern:"),
        ({"properties": {"id": {"pattern": "(?<=x)y"}}}, "at properties/id/pattern:"),
        ({"patternProperties": {"(?=x)": {}}}, "at patternProperties:"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_naming_it_and_where(schema, where):
    with pytest.raises(ValueError, match="RE2") as refused:
        check_schema_config({"schema": schema})
    assert where in str(refused.value)


def test_unevaluated_properties_beside_pattern_properties_is_refused():
    schema = {"patternProperties": {"^a": {}}, "unevaluatedProperties": False}
    with pytest.raises(ValueError, match="unevaluatedProperties"):
        check_schema_config({"schema": schema})
    check_schema_config({"schema": {"unevaluatedProperties": False}})
