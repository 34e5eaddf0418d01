"""A message's fingerprinting costs a bounded amount of work whatever it holds: its template is
made from its first MAX_MESSAGE_CHARS characters, the rest being one more variable. Counted in
characters handed to the patterns, never timed (`make bench` figure 8 times it)."""

import gc
import random
import re
import weakref

import pytest

from errors import fingerprint, fingerprint_v1
from errors.fingerprint import MAX_MESSAGE_CHARS, PLACEHOLDER, normalize

# Runs of one unit where every character starts a match of some pattern, or a quote or a
# bracket the template widens; then shapes that are almost a variable.
CRAFTED = [
    "'",
    '"a',
    "()",
    "[(",
    ".",
    "a.",
    "a.b.",
    "1.",
    "1:",
    "a::",
    "a=",
    "a=(",
    "=",
    "a@",
    "/a",
    "C:\\a",
    "a-",
    "abc1",
    "#%~$",
    "é1",
    " \t",
    "user ",
    "Jan 1 ",
    "123e4567-e89b-12d3-a456-42661417400 ",
    "2024-01-31T23:5",
    "ab_aBcDeFgHiJ",
    "a" * 60 + "-",
]


def crafted(unit, length):
    return "Payment failed: " + (unit * length)[:length]


class Counting:
    """A compiled pattern that notes each call (method, characters handed), then does its work."""

    def __init__(self, pattern, seen):
        self.pattern, self._compiled, self._seen = pattern.pattern, pattern, seen

    def sub(self, repl, string, count=0):
        self._seen.append(("sub", len(string)))
        return self._compiled.sub(repl, string, count)

    def match(self, string, *args):
        self._seen.append(("match", len(string)))
        return self._compiled.match(string, *args)

    def search(self, string, *args):
        self._seen.append(("search", len(string)))
        return self._compiled.search(string, *args)


@pytest.fixture
def examined(monkeypatch):
    """The number of characters every pattern of the module examines, per call of `work`."""
    seen = []
    for name, value in vars(fingerprint).items():
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(fingerprint, name, Counting(value, seen))

    def count(work):
        fingerprint.clear_caches()
        seen.clear()
        work()
        return sum(length for _method, length in seen)

    return count


@pytest.mark.parametrize("unit", CRAFTED, ids=lambda unit: repr(unit[:8]))
def test_the_work_on_a_crafted_message_does_not_grow_past_the_cap(unit, examined):
    at_2k = examined(lambda: normalize(crafted(unit, 2048)))
    at_64k = examined(lambda: normalize(crafted(unit, 65536)))
    assert at_2k == at_64k
    # Quotes and empty brackets widen the text the field patterns see (`''` is `'<*>'`).
    assert at_64k <= 4 * MAX_MESSAGE_CHARS


def test_messages_reaching_the_engine_are_fingerprinted_from_a_shorter_head():
    """Captured messages are cut to VELO_MAX_ERROR_MESSAGE_CHARS (2,000 by default); a crafted
    one of that length still costs what its head costs."""
    assert MAX_MESSAGE_CHARS <= 1024


@pytest.mark.parametrize("unit", CRAFTED, ids=lambda unit: repr(unit[:8]))
def test_crafted_messages_have_stable_sensible_templates(unit):
    message = crafted(unit, 4096)
    template = normalize(message)
    fingerprint.clear_caches()
    assert normalize(message) == template
    assert template.startswith("Payment failed: ")
    assert template.endswith(PLACEHOLDER)
    assert len(template) <= 3 * MAX_MESSAGE_CHARS
    # Only what is past the cap differs between these: one group.
    assert normalize(crafted(unit, 2048)) == normalize(crafted(unit, 65536)) == template


def test_messages_that_differ_only_past_the_cap_share_a_template():
    head = "Order 8841 rejected: " + "price below the floor, " * 60
    assert len(head) > MAX_MESSAGE_CHARS
    one, other = head + "see the price list", head + "ask the desk"
    assert normalize(one) == normalize(other)
    assert normalize(one).startswith("Order <*> rejected: price below the floor, price")
    assert normalize(one).endswith(f" {PLACEHOLDER}")


def test_a_message_under_the_cap_keeps_its_end():
    message = "Order 8841 rejected: " + "price below the floor, " * 30 + "see the list"
    assert len(message) <= MAX_MESSAGE_CHARS
    assert normalize(message).endswith("floor, see the list")


def test_the_cut_drops_the_word_it_splits():
    message = "x " * (MAX_MESSAGE_CHARS // 2 - 2) + "abc" + "defghijk" * 10
    template = normalize(message)
    assert template.endswith(f"x x {PLACEHOLDER}")
    assert "abc" not in template


# Version 1's keys are looked up for every new fingerprint (errors.services). Its URL and e-mail
# patterns (a run of characters, then `://` or `@`), given to `sub`, are tried from each place
# of a run that fails: 13 ms for 2,000 characters of `1.`, against 25 µs for a normal message.
V1_CRAFTED = ["1.", "a.", "a-", "a.b.", "1.2.3.", "a@", "a.@!", "a. ://", "a://", "x@a.--"]
V1_RUN_PLACEHOLDERS = ("<url>", "<email>")


def v1_run_patterns():
    return [(ph, p) for ph, p in fingerprint_v1._COMPILED if ph in V1_RUN_PLACEHOLDERS]


def corpus():
    """Seeded random texts over the characters these patterns turn on, and crafted runs."""
    pieces = [*"aZ1_.-+@:/ é\t'\"<>x9", "://", "@a.b", "a.com", "-.", " http://"]
    draw = random.Random(14)
    texts = ["".join(draw.choice(pieces) for _ in range(draw.randint(0, 40))) for _ in range(20000)]
    return texts + [(unit * 2000)[:2000] for unit in V1_CRAFTED]


def test_version_1_keys_are_unchanged():
    """Its fingerprints are stored: the linear substitution gives exactly what `sub` gives."""
    for text in corpus():
        for placeholder, pattern in v1_run_patterns():
            linear = fingerprint_v1._sub_at_runs(
                pattern, placeholder, text, *fingerprint_v1._AT_RUNS[pattern.pattern]
            )
            assert linear == pattern.sub(placeholder, text), (text, placeholder)


@pytest.mark.parametrize("unit", V1_CRAFTED)
def test_version_1_tries_its_run_patterns_once_per_occurrence(unit, monkeypatch):
    """Never `sub` over a whole text: one attempt per `://` or `@` in it, at most."""
    seen = []
    counted = [
        (placeholder, Counting(p, seen) if placeholder in V1_RUN_PLACEHOLDERS else p)
        for placeholder, p in fingerprint_v1._COMPILED
    ]
    monkeypatch.setattr(fingerprint_v1, "_COMPILED", counted)
    text = (unit * 2000)[:2000]
    fingerprint_v1.normalize.cache_clear()
    fingerprint_v1.normalize(text)
    assert all(method == "match" for method, _length in seen)
    assert len(seen) <= text.count("@") + text.count("://")


class Message(str):
    """A message a test can watch being freed (a plain str cannot be weakly referenced)."""


def test_the_memo_keeps_heads_not_whole_messages():
    """group_keys over 4,096 messages of a megabyte must not keep 4 GiB alive."""
    huge = Message("Timeout on order 8841 " + "x" * 1_000_000)
    watch = weakref.ref(huge)
    assert normalize(huge) == "Timeout on order <*>"
    del huge
    gc.collect()
    assert watch() is None
