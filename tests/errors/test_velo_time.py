"""Times as operators read them (common.moments and the `ago` filter): relative words, the exact
UTC time on hover; in the past, the future and at each unit's boundary."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from common.moments import moment_html, relative_words
from errors.templatetags.velo_time import ago

NOW = datetime(2026, 12, 2, 18, 1, 2, tzinfo=UTC)
S = "\xa0"  # the number and its unit never part


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "just now"),
        (59.9, "just now"),
        (60, f"1{S}min ago"),
        (3 * 60 + 10, f"3{S}min ago"),
        (3599, f"59{S}min ago"),
        (3600, f"1{S}h ago"),
        (3660, f"1{S}h 1{S}min ago"),
        (86399, f"23{S}h 59{S}min ago"),
        (86400, f"1{S}day ago"),
        (2 * 86400, f"2{S}days ago"),
        (365 * 86400 - 1, f"364{S}days ago"),
        (365 * 86400, f"1{S}year ago"),
        (3 * 365 * 86400, f"3{S}years ago"),
    ],
)
def test_a_past_moment_reads_in_the_largest_unit_rounded_down(seconds, words):
    assert relative_words(NOW - timedelta(seconds=seconds), NOW) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.5, "in under a minute"),
        (59.9, "in under a minute"),
        (60, f"in 1{S}min"),
        (3 * 60, f"in 3{S}min"),
        (2 * 3600 + 5 * 60, f"in 2{S}h 5{S}min"),
        (3 * 86400, f"in 3{S}days"),
    ],
)
def test_a_future_moment_such_as_a_retry_due_reads_in(seconds, words):
    assert relative_words(NOW + timedelta(seconds=seconds), NOW) == words


def test_the_time_element_carries_the_moment_in_utc_on_hover_whatever_its_zone():
    moment = (NOW - timedelta(minutes=3)).astimezone(timezone.get_fixed_timezone(120))
    html = moment_html(moment, NOW)
    assert html == (
        '<time datetime="2026-12-02T17:58:02+00:00" title="2026-12-02 17:58:02 UTC">'
        f"3{S}min ago</time>"
    )


def test_the_filter_reads_against_the_clock_and_no_moment_is_a_dash():
    assert f">3{S}min ago</time>" in ago(timezone.now() - timedelta(minutes=3, seconds=10))
    assert ago(None) == "–"


def test_the_group_page_and_health_page_use_it(login, make_job, run_batch):
    from tests.conftest import BAD

    client = login("errors.view_errorgroup", "dlq.view_job")
    run_batch(make_job("orders"), [BAD])
    from errors.models import ErrorGroup

    group = ErrorGroup.objects.get()
    assert ">just now</time>" in client.get(f"/errors/{group.pk}/").content.decode()
    health = client.get("/dlq/health/").content.decode()
    assert '<td class="last-entry"><time datetime=' in health
