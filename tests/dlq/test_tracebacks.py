"""Which tracebacks are split into their site's head and their final line, and how."""

from common import text as bounded
from dlq.processors.runner import traceback_text
from dlq.tracebacks import split


def raised(exc_type, message):
    try:
        raise exc_type(message)
    except Exception as exc:
        return exc


def plain(exc):
    return traceback_text(exc, str(exc))


def test_the_runners_plain_form_splits_before_its_final_line():
    text = plain(raised(KeyError, "symbol"))
    head, rest = split(text)
    assert head + rest == text
    assert head.startswith("Traceback (most recent call last):\n  File ")
    assert rest == "KeyError: 'symbol'\n"


def test_a_message_of_several_lines_stays_whole_in_the_rest():
    text = plain(raised(ValueError, "first line\n  second, indented\nthird"))
    head, rest = split(text)
    assert head + rest == text
    assert rest == "ValueError: first line\n  second, indented\nthird\n"


def test_two_failures_at_one_site_share_their_head():
    texts = [plain(raised(ValueError, f"record {i}")) for i in range(2)]
    (head_0, rest_0), (head_1, rest_1) = map(split, texts)
    assert head_0 == head_1 and rest_0 != rest_1


def test_chained_exceptions_and_syntax_errors_are_not_split():
    try:
        try:
            {}["missing"]
        except KeyError as exc:
            raise ValueError("no value") from exc
    except ValueError as exc:
        chained = exc
    try:
        compile("x = = 1", "<record>", "exec")
    except SyntaxError as exc:
        syntax = exc
    for exc in (chained, syntax):
        assert split(traceback_text(exc, str(exc))) is None


def test_a_traceback_cut_in_its_middle_is_not_split(settings):
    whole = plain(raised(ValueError, "x" * 2000))
    frames = len(split(whole)[0])
    # Cut in its frames, and cut after them, in its final line.
    for limit in (frames, 4 * (frames + 40)):
        settings.VELO_MAX_TRACEBACK_CHARS = limit
        text = bounded.traceback(whole)
        assert "\n… [truncated, " in text
        assert split(text) is None


def test_text_not_from_the_runner_is_not_split():
    for text in ("", "Traceback (most recent call last):\n", "KeyError: 'symbol'\n"):
        assert split(text) is None
