"""VELO_METRICS_TOKEN (SPEC §2, §6): /metrics is open unless a token is set."""

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"


def test_without_a_token_setting_metrics_is_open(client):
    with override_settings(VELO_METRICS_TOKEN=""):
        response = client.get("/metrics")
    assert response.status_code == 200
    assert b"velo_active_jobs" in response.content


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        f"Token {TOKEN}",
    ],
)
def test_with_a_token_setting_a_missing_or_wrong_token_is_401(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    with override_settings(VELO_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"velo_" not in response.content


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}"])
def test_with_a_token_setting_the_right_token_is_200(client, authorization):
    with override_settings(VELO_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", headers={"Authorization": authorization})
    assert response.status_code == 200
    assert b"velo_active_jobs" in response.content


def test_the_probes_stay_open_when_a_metrics_token_is_set(client):
    with override_settings(VELO_METRICS_TOKEN=TOKEN):
        assert client.get("/live").status_code == 200
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_metrics_refuses_writes_with_405(method):
    # With the CSRF check on, as a real server has it: a write is a 405 all the same.
    response = getattr(Client(enforce_csrf_checks=True), method)("/metrics")
    assert response.status_code == 405
    assert sorted(response["Allow"].split(", ")) == ["GET", "HEAD"]
    assert b"velo_" not in response.content


def test_metrics_answers_head_like_get(client):
    with override_settings(VELO_METRICS_TOKEN=""):
        response = client.head("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


def test_head_metrics_checks_the_token_too(client):
    with override_settings(VELO_METRICS_TOKEN=TOKEN):
        assert client.head("/metrics").status_code == 401
        authorised = client.head("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorised.status_code == 200


def test_post_with_the_right_token_is_still_405(client):
    with override_settings(VELO_METRICS_TOKEN=TOKEN):
        response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
