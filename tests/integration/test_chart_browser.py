"""The /errors/ chart in a real browser: its legend hides and isolates series, buckets hover.

Failures are recorded through the error services at known minutes of the last
hour, so the chart has a noisy group and quiet ones, as after a real alert.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from errors.context import DeploymentContext
from errors.models import ErrorGroup
from errors.services import Failure, group_failures, save_occurrences

from .test_browser import PASSWORD, log_in, page, shot  # noqa: F401 (page is a fixture)

pytestmark = [pytest.mark.e2e]
PLACE = DeploymentContext(node_id="node-a", node_name="node-a", region="eu", version="1.0")
NOISY, FEW, ONCE = "Invalid JSON in 'price' field", "Missing required column 'symbol'", "Timeout"


def record(message, when, times):
    groups = group_failures("trades", [Failure("ValueError", message)] * times, now=when)
    rows = [(group, message, None) for group in groups]
    save_occurrences("trades", rows, now=when, context=PLACE)


def legend_entry(tab, template):
    group = ErrorGroup.objects.get(template__startswith=template)
    return tab.locator(".velo-chart-legend li").filter(has_text=f"#{group.pk} trades")


def series_line(tab, entry):
    return tab.locator(f".velo-series[data-series='{entry.get_attribute('data-series')}']")


def y_top(tab):
    return tab.locator(".velo-axis[data-fraction='1']").text_content()


def test_the_legend_hides_and_isolates_series_and_buckets_show_their_counts(
    page,  # noqa: F811
    live_server,
    django_user_model,
    transactional_db,
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    now = timezone.now()
    quiet_at = now - timedelta(minutes=12)
    for minutes_ago in range(40, -1, -1):
        when = now - timedelta(minutes=minutes_ago)
        record(NOISY, when, 40)
        if minutes_ago in (20, 5, 4, 3):
            record(FEW, when, 2)
        if when == now - timedelta(minutes=12):
            record(f"{ONCE} after 3000 ms", quiet_at, 1)

    log_in(page, "/errors/?range=1h")
    page.wait_for_selector(".velo-chart-legend")
    shot(page, "errors-chart-1h")
    noisy, few, once = (legend_entry(page, t) for t in (NOISY, FEW, ONCE))
    assert page.locator(".velo-series").count() == 3
    assert y_top(page) == "50"  # 40 a minute: the noisy group sets the shared scale

    # Hovering a bucket names its minute and what failed in it.
    minute = quiet_at.replace(second=0, microsecond=0)
    column = page.locator(f"rect.velo-bucket[data-start='{minute.isoformat()}']")
    column.hover()
    title = column.locator("title").text_content()
    assert title.startswith(f"{minute:%b %d %H:%M}–{minute + timedelta(minutes=1):%H:%M} UTC: 41 ")
    assert "Timeout after <*>: 1" in title
    assert "Invalid JSON in 'price' field: 40" in title

    # Hiding the noisy group rescales the axis to the others.
    noisy.locator(".velo-toggle").click()
    assert series_line(page, noisy).is_hidden()
    assert series_line(page, few).is_visible() and series_line(page, once).is_visible()
    assert noisy.locator(".velo-toggle").get_attribute("aria-pressed") == "false"
    assert y_top(page) == "2"
    shot(page, "errors-chart-1h-noisy-hidden")

    # "only" shows one series alone, on its own scale; again shows them all.
    once.locator(".velo-only").click()
    assert [series_line(page, e).is_visible() for e in (noisy, few, once)] == [False, False, True]
    assert y_top(page) == "1"
    shot(page, "errors-chart-1h-only-one")
    once.locator(".velo-only").click()
    assert [series_line(page, e).is_visible() for e in (noisy, few, once)] == [True, True, True]
    assert y_top(page) == "50"

    page.goto("/errors/?range=6h")
    page.wait_for_selector(".velo-chart-legend")
    assert page.locator("rect.velo-bucket").count() == 72
    shot(page, "errors-chart-6h")
    page.locator(".velo-template a", has_text=NOISY).click()
    page.wait_for_selector(".velo-chart-legend")
    assert page.locator(".velo-chart-legend li").count() == 1  # by version: one version
    shot(page, "errors-group-chart-6h")
