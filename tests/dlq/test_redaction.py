"""dlq.redaction on its own: which keys are sensitive, masking payloads, texts, diffs and the
list's excerpts, putting an editor's untouched masks back, and tracebacks without server paths."""

import json

from dlq import redaction
from dlq.redaction import MASK, Redactor

DEFAULT = Redactor(redaction.DEFAULT_REDACT_FIELDS)


def test_keys_match_by_whole_words_in_any_case():
    for key in ("password", "PASSWORD", "db_password", "userPassword", "x-api-key", "cardNumber"):
        assert DEFAULT.sensitive(key), key
    for key in ("lessons", "classname", "passage", "price", "spinner"):
        assert not DEFAULT.sensitive(key), key


def test_mask_replaces_sensitive_values_at_any_depth_and_leaves_the_original():
    payload = {"a": [{"auth": {"password": "p4ss"}}], "secret": {"k": 1}, "price": 2}
    masked = DEFAULT.mask(payload)
    assert masked == {"a": [{"auth": {"password": MASK}}], "secret": MASK, "price": 2}
    assert payload["a"][0]["auth"]["password"] == "p4ss"


def test_a_jobs_own_fields_add_to_the_global_ones(settings):
    settings.VELO_REDACT_FIELDS = ["password"]
    redactor = redaction.for_config({"redact_fields": ["iban"]})
    assert redactor.mask({"iban": "DE89", "password": "x", "token": "t"}) == {
        "iban": MASK,
        "password": MASK,
        "token": "t",
    }


def test_texts_lose_the_records_secrets_and_sensitive_pairs():
    record = {"password": "hunter22", "card": {"card_number": 4111111111111111}, "pin": "12"}
    message = (
        "bad hunter22 for 4111111111111111; pin=12 'token': 'abc' Authorization: Bearer x.y "
        "Field 'password': shorter than minLength 8"
    )
    [masked] = DEFAULT.texts(record, message)
    assert masked == (
        f"bad {MASK} for {MASK}; pin={MASK} 'token': '{MASK}' Authorization: {MASK} "
        "Field 'password': shorter than minLength 8"
    )


def test_unmask_puts_back_only_masks_left_untouched_under_sensitive_keys():
    original = {"password": "p4ss", "items": [{"token": "t1"}], "note": "n"}
    edited = {"password": MASK, "items": [{"token": "new"}], "note": MASK, "extra": {"pin": MASK}}
    assert DEFAULT.unmask(edited, original) == {
        "password": "p4ss",
        "items": [{"token": "new"}],
        "note": MASK,
        "extra": {"pin": MASK},
    }


def test_mask_json_text_masks_a_cut_excerpt():
    text = json.dumps({"id": 1, "password": 'p"w', "card": {"cvv": 123}, "secret": {"a": [1, 2]}})
    masked = redaction.mask_json_text(text, DEFAULT)
    assert json.loads(masked) == {"id": 1, "password": MASK, "card": {"cvv": MASK}, "secret": MASK}
    cut = redaction.mask_json_text('{"id": 1, "token": "abcdef', DEFAULT)
    assert cut == f'{{"id": 1, "token": "{MASK}"'


def test_a_fix_diff_is_masked_on_sensitive_paths():
    diff = [
        {"op": "replace", "path": "/password", "value": "new", "was": "old"},
        {"op": "replace", "path": "/price", "value": 2, "was": 1},
    ]
    assert DEFAULT.mask_diff(diff) == [
        {"op": "replace", "path": "/password", "value": MASK, "was": MASK},
        {"op": "replace", "path": "/price", "value": 2, "was": 1},
    ]


def test_short_paths_keeps_library_and_project_paths_relative(settings):
    import django

    library = django.__file__
    project = str(settings.BASE_DIR / "dlq" / "processors" / "builtin.py")
    traceback = (
        f'  File "{library}", line 1, in setup\n'
        f'  File "{project}", line 2, in json_schema\n'
        '  File "/opt/elsewhere/pipelines/transform.py", line 3, in process\n'
    )
    shown = redaction.short_paths(traceback)
    assert 'File "django/__init__.py"' in shown
    assert 'File "dlq/processors/builtin.py"' in shown
    assert 'File ".../pipelines/transform.py"' in shown
