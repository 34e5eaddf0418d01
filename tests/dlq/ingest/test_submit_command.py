"""`submit_batch JOB FILE`: a JSON array or JSONL file (or stdin) in batches; errors name lines."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError

from dlq.ingest import reader
from dlq.models import Batch
from tests.commands import run

pytestmark = pytest.mark.django_db


def trades(count, start=0):
    return [{"symbol": f"S{i}", "price": i + 0.5} for i in range(start, start + count)]


def jsonl(records):
    return "".join(json.dumps(record) + "\n" for record in records)


def submitted_records(job):
    return [r for b in Batch.objects.filter(job=job).order_by("pk") for r in b.records]


def test_submit_batch_reads_a_json_array_file(make_job, tmp_path):
    job = make_job("orders")
    path = tmp_path / "records.json"
    path.write_text(json.dumps(trades(5), indent=2))

    out, err = run("submit_batch", "orders", str(path))

    [batch] = Batch.objects.filter(job=job)
    assert batch.records == trades(5)
    assert batch.status == Batch.Status.QUEUED
    assert f"Submitted 5 records to job 'orders' in 1 batch(es): ids {batch.pk}." in out
    assert "5 records" in err  # the progress bar


def test_submit_batch_reads_a_jsonl_file_and_splits_it_by_batch_size(make_job, tmp_path):
    job = make_job("orders")
    path = tmp_path / "records.jsonl"
    path.write_text(jsonl(trades(25)))

    run("submit_batch", "orders", str(path), "--batch-size", "10")

    batches = Batch.objects.filter(job=job).order_by("pk")
    assert [b.record_count for b in batches] == [10, 10, 5]
    assert submitted_records(job) == trades(25)


def test_submit_batch_reads_stdin_given_as_dash(make_job):
    job = make_job("orders")

    out, _ = run(
        "submit_batch", "orders", "-", "--batch-size", "2", stdin=StringIO(jsonl(trades(3)))
    )

    assert submitted_records(job) == trades(3)
    assert Batch.objects.filter(job=job).count() == 2
    assert "Submitted 3 records" in out


def test_submit_batch_skips_blank_lines_and_a_byte_order_mark(make_job, tmp_path):
    job = make_job("orders")
    path = tmp_path / "records.jsonl"
    path.write_text("\ufeff" + jsonl(trades(1)) + "\n   \n" + jsonl(trades(1, start=1)))

    run("submit_batch", "orders", str(path))

    assert submitted_records(job) == trades(2)


def test_a_broken_jsonl_line_stops_with_its_line_and_what_was_already_submitted(make_job, tmp_path):
    job = make_job("orders")
    lines = jsonl(trades(25)).splitlines(keepends=True)
    lines[22] = '{"symbol": "X", "price": 1,,}\n'  # line 23, in the third batch
    path = tmp_path / "records.jsonl"
    path.write_text("".join(lines))

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", str(path), "--batch-size", "10")

    message = str(caught.value)
    assert "line 23: not valid JSON" in message
    assert "Already submitted before it: 20 records in 2 batch(es)" in message
    assert "from line 21 on" in message
    # The batches before the broken one are kept; nothing of the broken one is.
    assert submitted_records(job) == trades(20)


def test_a_record_that_is_not_an_object_is_refused_with_its_line(make_job):
    make_job("orders")

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", "-", stdin=StringIO(jsonl(trades(2)) + "[1, 2]\n"))

    assert "line 3: expected a JSON object, got an array" in str(caught.value)
    assert "Nothing was submitted." in str(caught.value)
    assert not Batch.objects.exists()


def test_a_record_velo_cannot_store_is_refused_with_its_line(make_job):
    make_job("orders")
    records = [*trades(2), {"symbol": "A\u0000B", "price": 1}]

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", "-", stdin=StringIO(jsonl(records)))

    assert "line 3: " in str(caught.value)
    assert "NUL" in str(caught.value)
    assert not Batch.objects.exists()


def test_a_broken_json_array_stops_with_its_line(make_job, tmp_path):
    make_job("orders")
    path = tmp_path / "records.json"
    path.write_text('[\n  {"symbol": "A", "price": 1},\n  {"symbol": "B" "price": 2}\n]\n')

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", str(path))

    assert "line 3: not valid JSON" in str(caught.value)
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"price": 1},]', "line 1: not valid JSON"),
        ('[{"price": 1}', "line 1: the array is not closed"),
        ('[{"price": 1}] {"x": 1}', "line 1: unexpected data after"),
        ('[{"price": 1} {"x": 1}]', "line 1: expected ',' or ']'"),
    ],
)
def test_a_malformed_json_array_is_refused(make_job, text, expected):
    make_job("orders")

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", "-", stdin=StringIO(text))

    assert expected in str(caught.value)
    assert not Batch.objects.exists()


@pytest.mark.parametrize("fmt", ["array", "jsonl"])
def test_records_cut_by_the_read_chunk_are_read_whole(make_job, monkeypatch, fmt):
    """The input is read in chunks; a record (or a number) split between two must come out whole."""
    monkeypatch.setattr(reader, "CHUNK_CHARS", 7)
    job = make_job("orders")
    records = [{"symbol": "ACME", "price": 123456789, "note": "x" * 40}, *trades(30)]
    text = json.dumps(records, indent=1) if fmt == "array" else jsonl(records)

    run("submit_batch", "orders", "-", "--batch-size", "7", stdin=StringIO(text))

    assert submitted_records(job) == records


def test_rerunning_with_the_same_idempotency_key_submits_only_what_is_missing(make_job):
    job = make_job("orders")
    command = ("submit_batch", "orders", "-", "--batch-size", "5", "--idempotency-key", "load-1")
    broken = jsonl(trades(10)) + "not json\n" + jsonl(trades(5, start=10))
    with pytest.raises(CommandError) as caught:
        run(*command, stdin=StringIO(broken))
    assert "rerun with --idempotency-key load-1 --batch-size 5" in str(caught.value)

    out, _ = run(*command, stdin=StringIO(jsonl(trades(15))))

    assert submitted_records(job) == trades(15)
    assert "Submitted 5 records" in out
    assert "2 batch(es) had already been submitted" in out


def test_submit_batch_to_an_unknown_job_names_the_known_ones(make_job):
    make_job("orders")

    with pytest.raises(CommandError, match=r"no job named 'nope' \(known jobs: orders\)"):
        run("submit_batch", "nope", "-", stdin=StringIO(jsonl(trades(1))))


def test_submit_batch_refuses_a_batch_size_over_the_limit(make_job, settings):
    make_job("orders")
    settings.VELO_MAX_BATCH_RECORDS = 100

    with pytest.raises(CommandError, match="--batch-size must be between 1 and 100"):
        run("submit_batch", "orders", "-", "--batch-size", "101", stdin=StringIO(""))


def test_submit_batch_of_empty_input_submits_nothing(make_job):
    make_job("orders")

    out, _ = run("submit_batch", "orders", "-", stdin=StringIO("[]"))

    assert "nothing was submitted" in out
    assert not Batch.objects.exists()
