"""The site's frame: its name, its icon and its front door."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_front_door_asks_for_a_login_first_and_comes_back(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/")


@pytest.mark.parametrize(
    ("perms", "door"),
    [
        (("dlq.view_job",), "/dlq/health/"),
        (("dlq.view_job", "errors.view_errorgroup"), "/dlq/health/"),
        (("errors.view_errorgroup",), "/errors/"),
        ((), "/admin/"),
    ],
    ids=["health", "both", "errors only", "neither"],
)
def test_the_front_door_opens_the_first_page_the_user_may_see(login, perms, door):
    """Never a 403 at the front door: staff who may not view jobs get the error history or
    the admin (which lists what is left for them)."""
    response = login(*perms).get("/")
    assert (response.status_code, response["Location"]) == (302, door)
    assert login(*perms).get(door).status_code == 200


def test_the_admin_and_operator_pages_say_velo_and_carry_its_icon(admin_client):
    for url in ("/admin/", "/dlq/health/", "/errors/"):
        body = admin_client.get(url).content.decode()
        assert '<div id="site-name"><a href="/admin/">Velo</a></div>' in body, url
        assert "Django administration" not in body, url
        assert "| Velo</title>" in body, url
        assert 'rel="icon" type="image/svg+xml"' in body, url
