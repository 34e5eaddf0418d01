"""Secrets in records: masked in messages before they are stored, and wherever payloads show,
unless the user holds dlq.view_sensitive_payload; the stored payload stays whole."""

import json
import logging

import pytest
from django.utils import timezone

from dlq.models import DLQAttempt, DLQEntry
from dlq.processors import processor
from errors.models import ErrorGroup, ErrorOccurrence

from .helpers import attempt_history, worked

LIST = "/admin/dlq/dlqentry/"
SECRET = "S3cr3t-pw!"
CARD = "4111111111111111"
IBAN = "DE89370400440532013000"
VIEW = "dlq.view_dlqentry"
SENSITIVE = "dlq.view_sensitive_payload"
SCHEMA = {
    "type": "object",
    "properties": {"password": {"type": "string", "minLength": 12}, "price": {"type": "number"}},
    "required": ["price"],
}


@processor("test.echoes_secrets", transactional=False)
def echoes_secrets(record, ctx):
    """A careless processor: its message carries the record's secrets."""
    raise ValueError(
        f"login failed for {record['password']!r} with password={record['password']} "
        f"card {record['card_number']}, 'token': 'tok-abc123'"
    )


@pytest.fixture
def secret_job(make_job):
    return make_job(
        "signup",
        processor="json_schema",
        config={"schema": SCHEMA, "redact_fields": ["iban"]},
    )


@pytest.fixture
def secret_entry(run_batch, secret_job):
    record = {"password": SECRET, "card_number": CARD, "iban": IBAN, "price": 1}
    batch = run_batch(secret_job, [record])
    return DLQEntry.objects.get(batch=batch)


def _assert_hidden(text, *secrets):
    for secret in secrets:
        assert secret not in text


def test_json_schema_failure_on_a_password_shows_no_value_anywhere(
    run_batch, secret_job, client, make_token, caplog
):
    caplog.set_level(logging.WARNING, logger="velo.records")
    batch = run_batch(secret_job, [{"password": SECRET, "price": 1}])
    entry = DLQEntry.objects.get(batch=batch)
    assert entry.error_message == "Field 'password': shorter than minLength 12"
    assert entry.payload["password"] == SECRET  # the stored record is whole
    group = ErrorGroup.objects.get(pk=entry.error_group_id)
    texts = [entry.error_message, entry.full_traceback, batch.last_error, group.template]
    texts += [group.last_message, caplog.text]
    texts += [str(o.message) for o in ErrorOccurrence.objects.all() if hasattr(o, "message")]
    metrics = client.get("/metrics").content.decode()
    assert "message=\"Field 'password': shorter than minLength <*>\"" in metrics
    texts.append(metrics)
    auth = make_token()[1]
    texts.append(client.get("/api/v1/dlq", headers={"Authorization": auth}).content.decode())
    texts.append(client.get("/api/v1/errors", headers={"Authorization": auth}).content.decode())
    assert "password" in caplog.text
    _assert_hidden("\n".join(texts), SECRET)


def test_same_rule_on_the_same_field_is_one_group(run_batch, secret_job):
    run_batch(secret_job, [{"password": "short"}, {"password": "other", "price": 1}])
    run_batch(secret_job, [{"password": "tiny!", "price": 2}])
    templates = sorted(ErrorGroup.objects.values_list("template", "count"))
    assert templates == [
        ("Field 'password': shorter than minLength <*>", 2),
        ("Field 'price': missing (required)", 1),
    ]


def test_a_processor_echoing_secrets_stores_and_logs_them_masked(
    run_batch, make_job, caplog, client
):
    caplog.set_level(logging.WARNING, logger="velo.records")
    job = make_job("careless", processor="test.echoes_secrets")
    batch = run_batch(job, [{"password": SECRET, "card_number": CARD, "qty": 1}])
    entry = DLQEntry.objects.get(batch=batch)
    group = ErrorGroup.objects.get(pk=entry.error_group_id)
    metrics = client.get("/metrics").content.decode()
    for text in (
        entry.error_message,
        entry.full_traceback,
        group.last_message,
        caplog.text,
        metrics,
    ):
        _assert_hidden(text, SECRET, CARD, "tok-abc123")
    assert entry.error_message == (
        "login failed for '[redacted]' with password=[redacted] card [redacted], "
        "'token': '[redacted]'"
    )


def test_admin_detail_masks_payload_fields_unless_the_user_may_see_them(login, secret_entry):
    page = login(VIEW).get(f"{LIST}{secret_entry.pk}/change/").content.decode()
    _assert_hidden(page, SECRET, CARD, IBAN)  # iban: the job's own redact field
    assert "[redacted]" in page
    listing = login(VIEW).get(LIST).content.decode()
    _assert_hidden(listing, SECRET, CARD, IBAN)
    shown = login(VIEW, SENSITIVE).get(f"{LIST}{secret_entry.pk}/change/").content.decode()
    for value in (SECRET, CARD, IBAN):
        assert value in shown


def test_traceback_on_the_detail_page_shows_no_server_path(login, secret_entry, settings):
    assert str(settings.BASE_DIR) in secret_entry.full_traceback  # stored whole
    page = login(VIEW).get(f"{LIST}{secret_entry.pk}/change/").content.decode()
    assert "dlq/processors/builtin.py" in page
    assert str(settings.BASE_DIR) not in page
    assert 'File "/' not in page.replace("&quot;", '"')


def _export(client, entry):
    response = client.post(LIST, {"action": "export_jsonl", "_selected_action": [entry.pk]})
    assert response.status_code == 200
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_export_masks_payload_fields_unless_the_user_may_see_them(login, secret_entry, settings):
    [row] = _export(login(VIEW), secret_entry)
    assert row["payload"] == {
        "password": "[redacted]",
        "card_number": "[redacted]",
        "iban": "[redacted]",
        "price": 1,
    }
    assert str(settings.BASE_DIR) not in row["traceback"]
    assert 'File "dlq/processors/builtin.py"' in row["traceback"]
    [row] = _export(login(VIEW, SENSITIVE), secret_entry)
    assert row["payload"]["password"] == SECRET


def test_api_masks_payload_fields(client, make_token, secret_entry):
    auth = make_token()[1]
    response = client.get("/api/v1/dlq", headers={"Authorization": auth})
    [item] = response.json()["results"]
    assert item["payload"] == {
        "password": "[redacted]",
        "card_number": "[redacted]",
        "iban": "[redacted]",
        "price": 1,
    }


def test_editing_masked_keeps_the_secret_and_the_requeue_runs_on_it(login, secret_entry):
    editor = login(VIEW, "dlq.requeue_dlqentry")
    form = editor.get(f"{LIST}{secret_entry.pk}/edit-payload/").context["form"]
    shown = json.loads(form["payload"].value())
    assert shown["password"] == "[redacted]"
    shown["price"] = 2
    response = editor.post(
        f"{LIST}{secret_entry.pk}/edit-payload/", {"payload": json.dumps(shown)}, follow=True
    )
    worked(editor, response)
    secret_entry.refresh_from_db()
    assert secret_entry.payload == {
        "password": SECRET,
        "card_number": CARD,
        "iban": IBAN,
        "price": 2,
    }
    # The requeue ran the real record: the password still fails its rule, no mask does.
    assert secret_entry.error_message == "Field 'password': shorter than minLength 12"


def test_fix_previews_mask_payload_fields(client, make_token, secret_entry):
    auth = make_token(can_requeue=True)[1]
    body = {
        "ids": [secret_entry.pk],
        "patch": [{"op": "replace", "path": "/password", "value": "n3w-s3cret-value"}],
        "dry_run": True,
    }
    response = client.post(
        "/api/v1/dlq/patch", json.dumps(body), "application/json", headers={"Authorization": auth}
    )
    assert response.status_code == 200, response.content
    _assert_hidden(response.content.decode(), SECRET, CARD, IBAN, "n3w-s3cret-value")
    [item] = response.json()["sample"]
    assert item["before"]["password"] == "[redacted]"


def test_group_page_sample_masks_payload_fields(login, secret_entry, settings):
    viewer = login(VIEW, "errors.view_errorgroup")
    page = viewer.get(f"/errors/{secret_entry.error_group_id}/").content.decode()
    assert 'id="sample-payload"' in page
    _assert_hidden(page, SECRET, CARD, IBAN, str(settings.BASE_DIR))


def _fixed_iban(entry):
    return DLQAttempt.objects.create(
        entry=entry,
        kind=DLQAttempt.Kind.REQUEUE,
        started_by="ops",
        outcome=DLQAttempt.Outcome.FAILED,
        payload_diff=[{"op": "replace", "path": "/iban", "value": "DE00NEW", "was": IBAN}],
        at=timezone.now(),
    )


def test_attempt_history_masks_a_fix_diff_on_payload_fields(login, secret_entry):
    attempt = _fixed_iban(secret_entry)
    for url in (f"{LIST}{secret_entry.pk}/change/", f"/admin/dlq/dlqattempt/{attempt.pk}/change/"):
        page = login(VIEW, "dlq.view_dlqattempt").get(url).content.decode()
        assert "replace /iban" in page, url
        _assert_hidden(page, IBAN, "DE00NEW")
    page = login(VIEW, "dlq.view_dlqattempt").get(f"{LIST}{secret_entry.pk}/change/")
    original, fixed = attempt_history(page.content.decode())
    assert (original[1], original[5]) == ("Original processing", "-")
    assert (fixed[1], fixed[5]) == ("Requeue", "replace /iban: '[redacted]' → '[redacted]'")


def test_attempt_history_shows_a_fix_diff_whole_to_who_may_see_sensitive_fields(
    login, secret_entry
):
    _fixed_iban(secret_entry)
    page = login(VIEW, "dlq.view_dlqattempt", SENSITIVE).get(f"{LIST}{secret_entry.pk}/change/")
    [_, fixed] = attempt_history(page.content.decode())
    assert fixed[5] == f"replace /iban: '{IBAN}' → 'DE00NEW'"
