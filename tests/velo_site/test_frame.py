"""The site's frame: its name, its icon and its front door."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_front_door_leads_to_the_dlq_health_page(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/dlq/health/")


def test_the_admin_and_operator_pages_say_velo_and_carry_its_icon(admin_client):
    for url in ("/admin/", "/dlq/health/", "/errors/"):
        body = admin_client.get(url).content.decode()
        assert '<div id="site-name"><a href="/admin/">Velo</a></div>' in body, url
        assert "Django administration" not in body, url
        assert "| Velo</title>" in body, url
        assert 'rel="icon" type="image/svg+xml"' in body, url
