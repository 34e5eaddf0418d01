"""A token's scope fails closed and is changed only by who may widen it, with an audit row:
every job is a flag, an empty job list allows no job (issue 13, finding 1)."""

import json

import pytest

from dlq import tokens
from dlq.models import ApiToken, Job, OperatorAction, RequeueRun
from tests.dlq.factories import fail, schema_job

Action = OperatorAction.Action
TOKENS = "/admin/dlq/apitoken/"
JOBS = "/admin/dlq/job/"
NOT_ALLOWED = "this API token may not use this job"


def api(client, header, path, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=header)


@pytest.fixture
def orphaned(admin_client_):
    """A token limited to `orders` and `payments`, both deleted at once through the admin's
    "Delete selected jobs"; `other`, a job it never had, with a failed entry and a run.
    Return (the Authorization header, other, its entry, the run)."""
    # Jobs with DLQ entries cannot be deleted in the admin (entries are not deletable there).
    orders, payments, other = schema_job("orders"), schema_job("payments"), schema_job("other")
    [entry] = fail(other, 1)
    _, plaintext = tokens.create_token("limited", jobs=[orders, payments])
    _, requeuer = tokens.create_token("ops", can_requeue=True)
    run = admin_client_.post(
        "/api/v1/dlq/requeue",
        json.dumps({"job": "other", "dry_run": True}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {requeuer}",
    ).json()["run_id"]
    response = admin_client_.post(
        JOBS,
        {"action": "delete_selected", "_selected_action": [orders.pk, payments.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(Job.objects.values_list("name", flat=True)) == ["other"]
    token = tokens.authenticate(plaintext)
    assert token is not None and not token.jobs.exists()
    return f"Bearer {plaintext}", other, entry, RequeueRun.objects.get(pk=run)


def test_a_token_whose_jobs_were_all_deleted_may_use_no_job(client, orphaned):
    header, other, entry, run = orphaned

    for path, params in [
        ("/api/v1/dlq", {"job": "other"}),
        ("/api/v1/errors", {"job": "other"}),
        (f"/api/v1/batches/{entry.batch_id}", {}),
        (f"/api/v1/requeue-runs/{run.pk}", {}),
    ]:
        response = api(client, header, path, **params)
        assert response.status_code == 403, (path, response.content)
        assert "other" not in response.content.decode()
    # Unfiltered, it sees nothing: not other's payloads, not its error groups.
    assert api(client, header, "/api/v1/dlq").json()["results"] == []
    assert api(client, header, "/api/v1/errors").json()["results"] == []
    stats = api(client, header, "/api/v1/errors/stats").json()
    assert (stats["total_errors"], stats["unique_errors"], stats["top"]) == (0, 0, [])
    submitted = client.post(
        "/api/v1/jobs/other/batches",
        json.dumps([{"symbol": "ACME"}]),
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
    )
    assert submitted.status_code == 403
    assert submitted.json() == {"error": NOT_ALLOWED, "detail": None}
    assert other.batches.count() == 1


def test_the_admin_lists_a_token_without_jobs_as_using_none(admin_client_, orphaned):
    tokens.create_token("everything")

    content = admin_client_.get(TOKENS).content.decode()

    assert "no job (does nothing)" in content
    assert "every job" in content


# --- who may widen a token --------------------------------------------------------------------


def change(client, token, **values):
    """POST the token's change form with its current values, overridden by `values`."""
    data = {
        "name": token.name,
        "jobs": [job.pk for job in token.jobs.all()],
        **({"all_jobs": "on"} if token.all_jobs else {}),
        **({"can_requeue": "on"} if token.can_requeue else {}),
    }
    for key, value in values.items():
        if value is False:
            data.pop(key, None)
        else:
            data[key] = "on" if value is True else value
    return client.post(f"{TOKENS}{token.pk}/change/", data)


@pytest.mark.parametrize("field", ["can_requeue", "all_jobs"])
def test_change_permission_alone_cannot_tick_can_requeue_or_every_job(login, field):
    token, _ = tokens.create_token("limited", jobs=[schema_job("orders")])
    editor = login("dlq.view_apitoken", "dlq.change_apitoken")

    values = {field: True, **({"jobs": []} if field == "all_jobs" else {})}
    response = change(editor, token, **values)

    assert response.status_code == 200  # the form again, with its error
    assert "dlq.requeue_dlqentry" in response.content.decode()
    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.can_requeue, stored.all_jobs) == (False, False)
    assert list(stored.jobs.values_list("name", flat=True)) == ["orders"]
    assert not OperatorAction.objects.exists()


def test_change_permission_alone_may_empty_the_job_list_which_then_allows_no_job(login, client):
    orders = schema_job("orders")
    token, plaintext = tokens.create_token("limited", jobs=[orders])
    editor = login("dlq.view_apitoken", "dlq.change_apitoken")

    assert change(editor, token, jobs=[]).status_code == 302

    assert api(client, f"Bearer {plaintext}", "/api/v1/dlq", job="orders").status_code == 403


def test_the_requeue_permission_may_widen_a_token(login):
    token, _ = tokens.create_token("limited", jobs=[schema_job("orders")])
    lead = login("dlq.view_apitoken", "dlq.change_apitoken", "dlq.requeue_dlqentry")

    assert change(lead, token, all_jobs=True, jobs=[], can_requeue=True).status_code == 302

    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.can_requeue, stored.all_jobs, stored.jobs.exists()) == (True, True, False)


def test_a_token_for_every_job_takes_no_job_list(admin_client_):
    orders = schema_job("orders")
    token, _ = tokens.create_token("everything")

    response = change(admin_client_, token, jobs=[orders.pk])

    assert response.status_code == 200
    assert "untick" in response.content.decode()
    assert not ApiToken.objects.get(pk=token.pk).jobs.exists()


# --- the audit trail --------------------------------------------------------------------------


def test_a_token_change_in_the_admin_is_audited_with_before_and_after(admin_client_):
    orders, payments = schema_job("orders"), schema_job("payments")
    token, _ = tokens.create_token("ci", jobs=[orders])

    change(admin_client_, token, name="ci-2", jobs=[orders.pk, payments.pk], can_requeue=True)

    action = OperatorAction.objects.get()
    assert action.action == Action.TOKEN_CHANGE
    assert action.user == admin_client_.user
    assert action.via == "admin"
    assert "ci-2" in action.target
    assert action.details["token_id"] == token.pk
    assert action.details["before"] == {
        "name": "ci",
        "all_jobs": False,
        "jobs": ["orders"],
        "can_requeue": False,
        "revoked": False,
    }
    assert action.details["after"] == {
        "name": "ci-2",
        "all_jobs": False,
        "jobs": ["orders", "payments"],
        "can_requeue": True,
        "revoked": False,
    }
    assert action.outcome == "Change API token: can_requeue, jobs, name"


def test_saving_a_token_unchanged_writes_no_audit_row(admin_client_):
    token, _ = tokens.create_token("ci", jobs=[schema_job("orders")])

    assert change(admin_client_, token).status_code == 302

    assert not OperatorAction.objects.exists()


def test_revoking_in_the_admin_is_audited(admin_client_):
    token, _ = tokens.create_token("ci")

    admin_client_.post(TOKENS, {"action": "revoke", "_selected_action": [token.pk]})

    action = OperatorAction.objects.get()
    assert action.action == Action.TOKEN_REVOKE
    assert action.details["before"]["revoked"] is False
    assert action.details["after"]["revoked"] is True
    assert action.details["after"]["all_jobs"] is True
