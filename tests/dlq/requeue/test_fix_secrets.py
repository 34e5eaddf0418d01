"""A payload fix never shows a sensitive field's value to whoever may not see it.

Issue 13, finding 3, through the fix feature: masking the record's sensitive keys is not
enough when the fix itself moves a value ("copy /password to /note"), or says it in its
reason ("a test does not hold: S3cr3t-pw! …", "'S3cr3t-pw!' is not a number").
"""

import json

import pytest
from django.test import Client

from dlq import requeue
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.ingest import submit_batch
from dlq.models import DLQAttempt, DLQEntry, Job
from dlq.requeue import InvalidRequeue, PayloadFix, RequeueOptions, RequeueScope
from dlq.requeue.fix import preview
from dlq.tokens import create_token

pytestmark = pytest.mark.django_db

SECRET = "S3cr3t-pw!"
SCHEMA = {"type": "object", "required": ["symbol"], "properties": {"symbol": {"type": "string"}}}


@pytest.fixture
def failed_login_record():
    job = Job.objects.create(
        name="logins",
        processor="json_schema",
        config={"schema": SCHEMA, "redact_fields": ["iban"]},
        failure_strategy="send_to_dlq",
    )
    batch, _ = submit_batch(job, [{"user": "bob", "password": SECRET, "iban": "DE44500105"}])
    process_batch(batch.pk)
    return job


READS = [
    ([{"op": "copy", "from": "/password", "path": "/note"}], None),
    ([{"op": "move", "from": "/iban", "path": "/note"}], None),  # the job's own field
    ([{"op": "test", "path": "/password", "value": "guess"}], None),
    (None, [{"path": "/password", "to": "number"}]),
]


@pytest.mark.parametrize(("patch", "convert"), READS, ids=["copy", "move", "test", "convert"])
def test_the_api_refuses_a_fix_that_reads_a_sensitive_field(failed_login_record, patch, convert):
    _, token = create_token("fixer", can_requeue=True)
    body = {"job": "logins", "dry_run": True}
    body |= {"patch": patch} if patch else {}
    body |= {"convert": convert} if convert else {}
    response = Client().post(
        "/api/v1/dlq/patch",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400, response.content
    assert "sensitive field" in response.json()["error"]
    assert SECRET not in response.content.decode()


def test_a_fix_reading_other_fields_is_still_allowed(failed_login_record):
    PayloadFix.parse([{"op": "copy", "from": "/user", "path": "/symbol"}]).refuse_sensitive_reads()
    with pytest.raises(InvalidRequeue):
        PayloadFix.parse(
            [{"op": "copy", "from": "/password", "path": "/x"}]
        ).refuse_sensitive_reads()


@pytest.mark.parametrize(("patch", "convert"), READS, ids=["copy", "move", "test", "convert"])
def test_a_masked_preview_shows_no_secret_wherever_the_fix_put_it(
    failed_login_record, patch, convert
):
    fix = PayloadFix.parse(patch, convert)
    scope = RequeueScope.matching(job="logins").cut()
    shown = json.dumps([item.as_json() for item in preview(scope, fix, reveal=False)])
    assert SECRET not in shown and "DE44500105" not in shown
    revealed = json.dumps([item.as_json() for item in preview(scope, fix, reveal=True)])
    assert SECRET in revealed  # the permission still sees what the fix does


def test_the_stored_reason_of_a_fix_that_does_not_apply_holds_no_secret(failed_login_record):
    """A run by someone who may see secrets (the shell): its reasons are stored, and read by
    whoever may view entries."""
    fix = PayloadFix.parse([{"op": "test", "path": "/password", "value": "guess"}])
    run = requeue.run_here(
        RequeueScope.matching(job="logins"), RequeueOptions(fix=fix), Actor("ops", "admin")
    )
    assert run.not_fixed == 1
    attempt = DLQAttempt.objects.get(entry=DLQEntry.objects.get(), outcome="not_fixed")
    assert "a test does not hold" in attempt.error_message
    assert SECRET not in attempt.error_message
