"""The Content-Security-Policy in a real browser: the admin and the operator pages work under it.

Debian's chromium, driven by Playwright, reports every violation (the page's
securitypolicyviolation events and the console's CSP errors); none may occur,
and the chart's script and the pages' styles must have done their work.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from dlq.models import Job
from errors.context import DeploymentContext
from errors.services import Failure, group_failures, save_occurrences

from .test_browser import PASSWORD, log_in, page, shot  # noqa: F401 (page is a fixture)

pytestmark = [pytest.mark.e2e]

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


def record_failures():
    place = DeploymentContext(node_id="node-a", node_name="node-a", region="eu", version="1.0")
    now = timezone.now()
    for minutes_ago in (30, 20, 10, 1):
        when = now - timedelta(minutes=minutes_ago)
        failures = [Failure("ValueError", "Missing required column 'symbol'")] * 3
        groups = group_failures("trades", failures, now=when)
        rows = [(g, "Missing required column 'symbol'", None) for g in groups]
        save_occurrences("trades", rows, now=when, context=place)


def test_the_admin_and_operator_pages_raise_no_csp_violation(
    page,  # noqa: F811
    live_server,
    django_user_model,
    transactional_db,
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    Job.objects.create(name="trades", processor="demo.trades", dlq_max_size=10)
    record_failures()
    console = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(WATCH)

    log_in(page, "/errors/?range=1h")
    page.wait_for_selector(".velo-chart-legend")
    # charts.js ran: it scaled the plot (a transform it sets) and the toggles answer.
    assert page.locator(".velo-series").count() == 1
    toggle = page.locator(".velo-chart-legend .velo-toggle").first
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    # Styles came from the static files: the admin's (header colour) and the page's own.
    assert page.eval_on_selector("#header", "e => getComputedStyle(e).display") == "flex"
    shot(page, "csp-errors")
    violations = page.evaluate("window.__violations")

    for path in ("/dlq/health/", "/admin/", "/admin/dlq/dlqentry/", "/admin/dlq/job/"):
        page.goto(path)
        page.wait_for_load_state("load")
        violations += [f"{path}: {v}" for v in page.evaluate("window.__violations")]
    bar = page.goto("/dlq/health/") and page.locator(".velo-bar > span").first
    assert bar.evaluate("e => e.style.width") != ""  # the style attribute was applied
    shot(page, "csp-dlq-health")

    assert violations == []
    assert console == []
