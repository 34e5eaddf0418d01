"""API tokens: hashed storage, authentication, job limits, revocation, header and command."""

import hashlib
import importlib
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from dlq.api.auth import bearer_token
from dlq.models import ApiToken, Job, OperatorAction
from dlq.tokens import authenticate, create_token, revoke, token_allows_job

pytestmark = pytest.mark.django_db


# --- creating and storing -----------------------------------------------------------------


def test_token_is_stored_only_as_its_sha256_hash():
    token, plaintext = create_token("ci")

    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in {stored.name, stored.prefix, stored.token_hash}
    assert plaintext.startswith(stored.prefix)
    assert len(stored.prefix) < len(plaintext) // 3


def test_tokens_are_long_and_never_repeat():
    plaintexts = {create_token("ci")[1] for _ in range(20)}

    assert len(plaintexts) == 20
    assert all(len(p) >= 40 for p in plaintexts)


def test_token_keeps_its_jobs_requeue_right_and_creator(make_job, django_user_model):
    orders, payments = make_job("orders"), make_job("payments")
    admin = django_user_model.objects.create_user("ada")

    token, _ = create_token("ci", jobs=[orders, payments], can_requeue=True, created_by=admin)

    assert set(token.jobs.all()) == {orders, payments}
    assert token.can_requeue
    assert token.created_by == admin


@pytest.mark.parametrize("name", ["", "x" * 101])
def test_token_name_must_fit_the_column(name):
    with pytest.raises(ValueError, match="name"):
        create_token(name)
    assert not ApiToken.objects.exists()


# --- authenticating -----------------------------------------------------------------------


def test_authenticate_returns_the_token_for_its_plaintext():
    token, plaintext = create_token("ci")

    assert authenticate(plaintext) == token


@pytest.mark.parametrize("presented", [None, "", "velo_wrong", "x" * 10_000])
def test_authenticate_refuses_unknown_or_empty_tokens(presented):
    create_token("ci")

    assert authenticate(presented) is None


def test_authenticate_refuses_a_token_with_one_character_changed():
    _, plaintext = create_token("ci")
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")

    assert authenticate(tampered) is None


def test_revoked_token_no_longer_authenticates():
    token, plaintext = create_token("ci")

    assert revoke(token) is True

    assert authenticate(plaintext) is None
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_revoking_twice_reports_that_it_was_already_revoked():
    token, _ = create_token("ci")
    revoke(token)

    assert revoke(token) is False


def test_first_use_records_last_used_at():
    token, plaintext = create_token("ci")
    assert token.last_used_at is None

    authenticate(plaintext)

    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_last_used_at_is_written_at_most_once_a_minute():
    token, plaintext = create_token("ci")
    authenticate(plaintext)
    first = ApiToken.objects.get(pk=token.pk).last_used_at

    authenticate(plaintext)

    assert ApiToken.objects.get(pk=token.pk).last_used_at == first


def test_last_used_at_moves_on_once_the_minute_has_passed():
    token, plaintext = create_token("ci")
    long_ago = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=long_ago)

    authenticate(plaintext)

    assert ApiToken.objects.get(pk=token.pk).last_used_at > long_ago


# --- job limits ---------------------------------------------------------------------------


def test_token_made_without_jobs_may_use_every_job(make_job):
    token, _ = create_token("ci")

    assert token.all_jobs
    assert token_allows_job(token, make_job("orders"))
    assert token_allows_job(token, make_job("payments"))


def test_token_with_an_empty_job_list_may_use_no_job(make_job):
    token, _ = create_token("ci", jobs=[])

    assert not token.all_jobs
    assert not token_allows_job(token, make_job("orders"))


def test_token_with_jobs_may_use_only_those(make_job):
    orders, payments = make_job("orders"), make_job("payments")
    token, _ = create_token("ci", jobs=[orders])

    assert token_allows_job(token, orders)
    assert not token_allows_job(token, payments)


# --- the Authorization header -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("abc", None),
        ("", None),
    ],
)
def test_bearer_token_is_read_from_the_authorization_header(header, expected):
    request = RequestFactory().get("/api/v1/batches/1", HTTP_AUTHORIZATION=header)

    assert bearer_token(request) == expected


def test_request_without_authorization_header_has_no_bearer_token():
    assert bearer_token(RequestFactory().get("/api/v1/batches/1")) is None


# --- create_api_token ---------------------------------------------------------------------


def run_command(*args):
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().rstrip("\n").split("\n")


def test_command_prints_the_token_alone_on_its_last_line_and_it_authenticates():
    lines = run_command("--name", "ci")

    token = authenticate(lines[-1])
    assert token is not None
    assert token.name == "ci"
    assert lines[-1] == lines[-1].strip()
    assert not token.can_requeue
    assert token.all_jobs  # SPEC §6: a token without --job may use every job
    assert not token.jobs.exists()


def test_command_limits_the_token_to_the_given_jobs(make_job):
    orders, payments = make_job("orders"), make_job("payments")
    make_job("audit")

    lines = run_command("--name", "ci", "--job", "orders", "--job", "payments", "--can-requeue")

    token = authenticate(lines[-1])
    assert set(token.jobs.all()) == {orders, payments}
    assert not token.all_jobs
    assert token.can_requeue


def test_command_takes_several_jobs_after_one_flag(make_job):
    orders, payments = make_job("orders"), make_job("payments")

    token = authenticate(run_command("--name", "ci", "--job", "orders", "payments")[-1])

    assert set(token.jobs.all()) == {orders, payments}


def test_command_refuses_an_unknown_job_naming_it_and_creates_nothing(make_job):
    make_job("orders")

    with pytest.raises(CommandError, match="nope"):
        run_command("--name", "ci", "--job", "orders", "--job", "nope")
    assert not ApiToken.objects.exists()


def test_command_refuses_an_overlong_name():
    with pytest.raises(CommandError, match="name"):
        run_command("--name", "x" * 101)


def test_deleting_every_job_of_a_limited_token_leaves_it_using_none(make_job):
    orders, payments, other = make_job("orders"), make_job("payments"), make_job("other")
    token, _ = create_token("limited", jobs=[orders, payments])
    single, _ = create_token("single", jobs=[orders])

    Job.objects.filter(pk__in=[orders.pk, payments.pk]).delete()

    for limited in (token, single):
        limited = ApiToken.objects.get(pk=limited.pk)
        assert not limited.all_jobs
        assert not limited.jobs.exists()
        assert not token_allows_job(limited, other)


def test_command_creation_is_audited_as_the_shell_user(make_job):
    make_job("orders")

    run_command("--name", "ci", "--job", "orders")

    action = OperatorAction.objects.get()
    assert action.action == OperatorAction.Action.TOKEN_CREATE
    assert action.via == "shell"
    assert action.details["before"] is None
    assert action.details["after"]["jobs"] == ["orders"]


# --- migration 0016: every job becomes a flag -------------------------------------------------


def test_migration_marks_tokens_without_jobs_as_every_job_and_leaves_limited_ones(make_job):
    migration = importlib.import_module("dlq.migrations.0016_token_all_jobs")
    orders = make_job("orders")
    old_every, _ = create_token("old every-job token", jobs=[])
    limited, _ = create_token("limited", jobs=[orders])

    migration.every_job_for_tokens_without_jobs(django_apps, None)

    assert ApiToken.objects.get(pk=old_every.pk).all_jobs
    assert not ApiToken.objects.get(pk=limited.pk).all_jobs


def test_migration_backwards_revokes_tokens_that_would_widen(make_job):
    migration = importlib.import_module("dlq.migrations.0016_token_all_jobs")
    orders = make_job("orders")
    none, _ = create_token("no job", jobs=[])
    limited, _ = create_token("limited", jobs=[orders])
    every, _ = create_token("every job")

    migration.job_lists_only(django_apps, None)

    assert ApiToken.objects.get(pk=none.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=limited.pk).revoked_at is None
    assert ApiToken.objects.get(pk=every.pk).revoked_at is None
