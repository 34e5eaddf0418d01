"""Fixtures of the metrics tests: the frozen clock, this node's deployment, a scrape."""

import pytest
from django.utils import timezone

from .scraping import parse
from .workload import CLOCK, DEPLOYMENT


@pytest.fixture
def clock(monkeypatch):
    CLOCK.at(0)
    monkeypatch.setattr(timezone, "now", CLOCK)
    return CLOCK


@pytest.fixture
def deployment(settings):
    settings.VELO_DEPLOYMENT = DEPLOYMENT
    return DEPLOYMENT


@pytest.fixture
def scrape(client):
    """GET /metrics through Django; return (text, families)."""

    def get(**headers):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.content[:500]
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.content.decode()
        return text, parse(text)

    return get
