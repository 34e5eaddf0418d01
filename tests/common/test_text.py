"""Bounded text: cut visibly, with the original length, and idempotent."""

from common.text import clip, clip_middle


def test_clip_keeps_the_head_and_names_the_original_length():
    cut = clip("a" * 10_000, 100)
    assert len(cut) <= 100
    assert cut.startswith("a" * 50)
    assert cut.endswith("… [truncated, 10000 characters]")
    assert clip(cut, 100) == cut
    assert clip("short", 100) == "short"


def test_clip_middle_keeps_the_head_and_the_tail():
    text = "head\n" + "m" * 10_000 + "\nValueError: the last line"
    cut = clip_middle(text, 200)
    assert len(cut) <= 200
    assert cut.startswith("head\n")
    assert cut.endswith("\nValueError: the last line")
    assert f"[truncated, {len(text)} characters]" in cut
