"""Fingerprints: errors that differ only in their variable parts must land in one group."""

import pytest

from errors.fingerprint import MAX_MESSAGE_CHARS, fingerprint, normalize

# (placeholder, one message, another message differing only in that variable part)
SAME_TEMPLATE = [
    ("<int>", "Timeout after 3001 ms on order 8f3a9c21", "Timeout after 2950 ms on order 11b2e4f7"),
    ("<int>", "Row 17 rejected", "Row -4 rejected"),
    ("<float>", "price 10.25 out of range", "price 3.5 out of range"),
    ("<float>", "ratio 1e-5 too small", "ratio 2.5E+3 too small"),
    (
        "<uuid>",
        "no customer 123e4567-e89b-12d3-a456-426614174000",
        "no customer 9F1C2D3E-4B5A-6C7D-8E9F-0A1B2C3D4E5F",
    ),
    ("<uuid>", "trace 123e4567e89b12d3a456426614174000", "trace 0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
    ("<hex>", "order 8f3a9c21 missing", "order 11b2e4f7 missing"),
    ("<hex>", "bad pointer 0xDEADBEEF", "bad pointer 0x1f"),
    ("<date>", "no rate for 2024-01-31", "no rate for 2023-12-01"),
    ("<date>", "no rate for 1/31/2024", "no rate for 12/1/23"),
    ("<time>", "closed at 23:59:59", "closed at 08:00:01.250"),
    ("<datetime>", "stale since 2024-01-31T23:59:59Z", "stale since 2023-02-01 08:00:00+02:00"),
    ("<datetime>", "stale since 2024-01-31T23:59:59.123456+00:00", "stale since 2024-05-01T10:00"),
    ("<ip>", "connection to 10.0.0.1 refused", "connection to 192.168.17.254:5432 refused"),
    ("<ip>", "connection to 2001:db8::8a2e:370:7334 refused", "connection to ::1 refused"),
    (
        "<ip>",
        "connection to fe80:0:0:0:200:f8ff:fe21:67cf refused",
        "connection to 2001:0db8:85a3:0000:0000:8a2e:0370:7334 refused",
    ),
    ("<email>", "unknown user bob@example.com", "unknown user a.b+tag@mail.example.co.uk"),
    (
        "<url>",
        "GET https://api.example.com/v1/orders?id=7 failed",
        "GET http://10.0.0.1:80/x failed",
    ),
]


@pytest.mark.parametrize(("placeholder", "one", "other"), SAME_TEMPLATE)
def test_messages_differing_only_in_a_variable_part_share_template_and_fingerprint(
    placeholder, one, other
):
    assert normalize(one) == normalize(other)
    assert placeholder in normalize(one)
    assert fingerprint("orders", "ValueError", normalize(one)) == fingerprint(
        "orders", "ValueError", normalize(other)
    )


def test_the_spec_example_reads_as_expected():
    assert (
        normalize("Timeout after 3001 ms on order 8f3a9c21")
        == "Timeout after <int> ms on order <hex>"
    )


def test_wide_patterns_swallow_their_digits_whole():
    """A URL's or a timestamp's numbers must not turn into a string of <int>s."""
    assert normalize("see https://x.io/a/1?b=2 at 2024-01-31 10:00:00 from 10.0.0.1:99") == (
        "see <url> at <datetime> from <ip>"
    )


def test_different_templates_are_kept_apart():
    one, other = normalize("Missing required column 'symbol'"), normalize("Missing column 'price'")
    assert one != other
    assert fingerprint("orders", "KeyError", one) != fingerprint("orders", "KeyError", other)


def test_different_error_types_are_kept_apart():
    template = normalize("Timeout after 3001 ms")
    assert fingerprint("orders", "TimeoutError", template) != fingerprint(
        "orders", "ValueError", template
    )


def test_different_jobs_are_kept_apart():
    template = normalize("Timeout after 3001 ms")
    assert fingerprint("orders", "TimeoutError", template) != fingerprint(
        "trades", "TimeoutError", template
    )


def test_the_separator_keeps_shifted_fields_apart():
    """("ab", "c") and ("a", "bc") must not hash the same key."""
    assert fingerprint("ab", "c", "t") != fingerprint("a", "bc", "t")


def test_fingerprint_is_a_stable_sha256_hex_digest():
    value = fingerprint("orders", "ValueError", "Row <int> rejected")
    assert value == fingerprint("orders", "ValueError", "Row <int> rejected")
    assert len(value) == 64
    assert set(value) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    "message",
    [
        "deadbeef facade cafe",
        "Cannot decode the facade of cafe Added",
        "Missing required column 'symbol'",
        "Invalid JSON in 'price' field",
    ],
)
def test_words_that_look_like_hex_are_left_alone(message):
    assert normalize(message) == message


def test_a_hex_id_needs_a_digit_and_seven_characters():
    assert normalize("ids abc1234 and ab12") == "ids <hex> and ab12"


def test_a_one_megabyte_message_is_cut_before_normalising():
    """A worker must not spend its time normalising megabytes: only the head counts."""
    message = "Timeout after 3001 ms on order 8f3a9c21 for bob@example.com; " * 20_000
    assert len(message) > 1_000_000
    template = normalize(message)
    assert len(template) <= MAX_MESSAGE_CHARS
    assert template == normalize(message[:MAX_MESSAGE_CHARS])


def test_a_one_megabyte_message_of_numbers_stays_bounded():
    """Placeholders may be longer than what they replace ("1" -> "<int>"), but only five-fold."""
    template = normalize("1 " * 600_000)
    assert len(template) <= len("<int>") * MAX_MESSAGE_CHARS
    assert set(template.split()) == {"<int>"}


def test_an_empty_message_has_an_empty_template():
    assert normalize("") == ""


@pytest.mark.parametrize(
    ("first", "second"),
    [("Timeout after 3001ms", "Timeout after 2950ms"), ("took 0.5s", "took 12.25s")],
)
def test_a_number_written_against_its_unit_is_still_replaced(first, second):
    assert normalize(first) == normalize(second)
    assert not any(ch.isdigit() for ch in normalize(first))
