"""One id rule for every door: digits or ints within a bigint; never a boolean or a float."""

import pytest

from common.ids import MAX_ID, parse_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (MAX_ID, MAX_ID),
        ("42", 42),
        ("0042", 42),
        ("0" * 90 + "7", 7),
        (str(MAX_ID), MAX_ID),
    ],
)
def test_ids_are_accepted_as_ints_and_digit_strings(value, expected):
    assert parse_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        MAX_ID + 1,
        True,
        False,
        1.0,
        1.5,
        None,
        "",
        "0",
        "-1",
        "+1",
        "1e3",
        "١٢",
        "x",
        "1 2",
        " 42",
        "42\n",
        str(MAX_ID + 1),
        "9" * 400,
        "9" * 5000,
        [1],
        {"id": 1},
    ],
)
def test_anything_else_is_not_an_id(value):
    assert parse_id(value) is None


def test_json_bodies_take_numbers_only():
    assert parse_id(7, strings=False) == 7
    assert parse_id("7", strings=False) is None
