"""The admin's login is throttled (django-axes) and passwords are checked by Django's four
validators (issue 13, finding 9)."""

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests.commands import run

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def ops(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)


def log_in(client, password, username="ops", **meta):
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, **meta
    )


def logged_in(client):
    return client.get("/admin/").status_code == 200


def test_after_five_wrong_passwords_the_right_one_is_locked_out_too(client, ops):
    for attempt in range(1, 5):
        assert log_in(client, f"wrong-{attempt}").status_code == 200  # the form, with its error
    assert log_in(client, "wrong-5").status_code == 429

    response = log_in(client, PASSWORD)

    assert response.status_code == 429
    assert "too many login attempts" in response.content.decode()
    assert not logged_in(client)
    assert settings.AXES_FAILURE_LIMIT == 5  # VELO_LOGIN_FAILURE_LIMIT's default


def test_a_lockout_holds_one_user_from_one_address(client, ops, django_user_model):
    django_user_model.objects.create_superuser("dev", "dev@example.com", PASSWORD)
    for attempt in range(5):
        log_in(client, f"wrong-{attempt}", REMOTE_ADDR="198.51.100.1")

    assert log_in(client, PASSWORD, username="dev", REMOTE_ADDR="198.51.100.1").status_code == 302
    client.logout()
    assert log_in(client, PASSWORD, REMOTE_ADDR="198.51.100.2").status_code == 302


def test_without_a_proxy_a_forged_forwarded_for_does_not_dodge_the_lockout(client, ops):
    for attempt in range(5):
        log_in(client, f"wrong-{attempt}", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")

    assert log_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    assert settings.VELO_PROXY_COUNT == 0  # the default without VELO_HTTPS


@override_settings(VELO_PROXY_COUNT=1)
def test_behind_the_proxy_the_lockout_is_per_forwarded_client(client, ops):
    """Every request comes from the proxy's address; the client is the one it forwarded,
    whatever the client itself put before it in the header."""
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    for attempt in range(5):
        log_in(
            client,
            f"wrong-{attempt}",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}, 203.0.113.7",
            **proxy,
        )

    assert log_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 429
    assert log_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8", **proxy).status_code == 302


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("8675309142", "entirely numeric"),
        ("ops@example", "too similar"),
    ],
)
def test_weak_passwords_are_refused(ops, password, why):
    with pytest.raises(ValidationError, match=why):
        validate_password(password, ops)
    form = SetPasswordForm(ops, {"new_password1": password, "new_password2": password})
    assert not form.is_valid()


def test_the_generated_superuser_password_passes_the_validators_and_logs_in(
    client, tmp_path, django_user_model
):
    kept = tmp_path / "admin-password"
    run("ensure_superuser", "--password-file", str(kept))
    password = kept.read_text().strip()

    validate_password(password, django_user_model.objects.get(username="admin"))
    assert log_in(client, password, username="admin").status_code == 302
    assert logged_in(client)


def test_the_test_clients_login_and_a_scripts_authenticate_still_work(client, ops):
    """Without a request there is no HTTP login to throttle: axes alone would raise."""
    assert authenticate(username="ops", password=PASSWORD) == ops
    assert authenticate(username="ops", password="wrong") is None
    assert not client.login(username="ops", password="wrong")
    assert client.login(username="ops", password=PASSWORD)
    assert logged_in(client)
