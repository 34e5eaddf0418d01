"""The record reader: a JSON array or JSON Lines, a record at a time, each with its line number."""

import io

import pytest

from dlq.ingest import reader
from dlq.ingest.reader import BadInput, read_records


def read(text, max_record_chars=10_000):
    kind, records = read_records(io.StringIO(text), max_record_chars=max_record_chars)
    return kind, list(records)


def test_a_leading_bracket_makes_an_array_and_each_record_keeps_its_line():
    text = '\n  [\n{"a": 1},\n\n  {"a": 2}, {"a": 3}\n]\n'
    assert read(text) == ("array", [(3, {"a": 1}), (5, {"a": 2}), (5, {"a": 3})])


def test_anything_else_is_json_lines_and_blank_lines_are_skipped():
    assert read('{"a": 1}\n\n  \n{"a": 2}\n') == ("jsonl", [(1, {"a": 1}), (4, {"a": 2})])


def test_an_empty_array_and_empty_input_have_no_records():
    assert read("[ ]") == ("array", [])
    assert read("") == ("jsonl", [])


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_records_cut_by_any_chunk_boundary_are_read_whole(monkeypatch, chunk):
    monkeypatch.setattr(reader, "CHUNK_CHARS", chunk)
    text = '[{"n": 12345.5}, {"s": "long string"},\n{"deep": [1, [2, [3]]]}]'
    _, records = read(text)
    assert [record for _, record in records] == [
        {"n": 12345.5},
        {"s": "long string"},
        {"deep": [1, [2, [3]]]},
    ]
    monkeypatch.setattr(reader, "CHUNK_CHARS", chunk)
    _, lines = read('{"n": 123}\n{"n": 456}\n')
    assert lines == [(1, {"n": 123}), (2, {"n": 456})]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('{"a": 1}\n{"a": \n', 2, "not valid JSON"),
        ('[{"a": 1},\n{"a": 2}', 2, "not closed"),
        ('[{"a": 1}\n{"a": 2}]', 2, "expected ',' or ']'"),
        ('[{"a": 1}]\n{"b": 2}', 2, "after the array"),
        ('{"a": 1}\n[1, 2]\n', 2, "expected a JSON object, got an array"),
        ('["text"]', 1, "got a string"),
    ],
)
def test_bad_input_names_the_line_it_was_found_on(text, line, words):
    with pytest.raises(BadInput) as refused:
        read(text)
    assert refused.value.line == line
    assert words in str(refused.value)


def test_a_record_longer_than_the_limit_is_refused_without_reading_on():
    with pytest.raises(BadInput, match="longer than 100 characters"):
        read('[{"a": "' + "x" * 100_000 + '"}]', max_record_chars=100)
