"""The browser's protections on the HTML pages: a Content-Security-Policy that allows no
inline script, and the usual security headers (issue 13, finding 9)."""

from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db

PAGES = ("/admin/", "/errors/", "/dlq/health/", "/admin/dlq/dlqentry/", "/admin/dlq/job/add/")


def policy(response):
    """The Content-Security-Policy header as {directive: [sources]}."""
    directives = (part.split() for part in response["Content-Security-Policy"].split(";"))
    return {words[0]: words[1:] for words in directives if words}


@pytest.mark.parametrize("path", ["/admin/", "/errors/", "/admin/login/"])
def test_html_pages_carry_a_csp_and_the_security_headers(admin_client, client, path):
    response = (client if path == "/admin/login/" else admin_client).get(path)
    assert response.status_code == 200

    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


class InlineCode(HTMLParser):
    """<script> elements without src, <style> elements and on* handler attributes."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if (tag == "script" and "src" not in attrs) or tag == "style":
            self.found.append(f"<{tag}> at line {self.getpos()[0]}")
        self.found += [f"{name}= on <{tag}>" for name in attrs if name.startswith("on")]


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_have_nothing_inline_the_policy_would_block(admin_client, path):
    """Inline style *attributes* are allowed (style-src-attr); elements and handlers are not."""
    response = admin_client.get(path)
    assert response.status_code == 200
    parser = InlineCode()
    parser.feed(response.content.decode())
    assert parser.found == [], path
