"""API tokens in the admin: how they are made, the hash kept hidden, revoke."""

from dlq import tokens
from dlq.models import ApiToken


def test_api_token_list_says_how_tokens_are_created_and_hides_the_hash(admin_client_, db):
    token, _ = tokens.create_token("ci")
    content = admin_client_.get("/admin/dlq/apitoken/").content.decode()
    assert "create_api_token" in content
    assert token.token_hash not in content
    content = admin_client_.get(f"/admin/dlq/apitoken/{token.pk}/change/").content.decode()
    assert token.token_hash not in content


def test_revoke_action_revokes_the_selected_tokens(admin_client_, db):
    keep, _ = tokens.create_token("keep")
    drop, _ = tokens.create_token("drop")
    response = admin_client_.post(
        "/admin/dlq/apitoken/", {"action": "revoke", "_selected_action": [drop.pk]}
    )
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=drop.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=keep.pk).revoked_at is None
