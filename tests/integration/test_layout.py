"""Every operator page fits its window: no sideways scrolling at 1400 px (a laptop) or 390 px
(a phone), with demo-like data at its widest, and times read relative with UTC on hover.

Chromium measures the page as drawn; a table may scroll inside its own box, the page may not.
Screenshots land in test-artifacts/screenshots/layout-*.png.
"""

import random

import pytest

from demo.feed import Feed, ensure_demo_jobs, feed
from dlq import requeue, triage
from dlq.actors import Actor
from dlq.engine import process_batch
from dlq.models import Batch, DLQEntry, Job, RequeueRun
from errors.models import ErrorGroup, ErrorOccurrence

from .test_browser import PASSWORD, page, shot  # noqa: F401  (page is a fixture)

pytestmark = pytest.mark.e2e

LAPTOP, PHONE = 1400, 390
LONG_JOB = "settlement-reconciliation-nightly-eu-west-1-primary-ledger-replica"
# What real messages look like at their worst: long, and with words no line can break.
LONG_MESSAGES = [
    "Invalid JSON in 'price' field: expected a number but found the string '662,00' in record "
    "trade_id=TRD-2026-12-02-000481 of the settlement file settlements/eu-west-1/2026/12/02/"
    "batch-0007.jsonl while reconciling against the primary ledger replica " + "x" * 120,
    "ConnectionError: https://ledger.internal.example.com/api/v2/reconciliation/accounts/"
    "ACC-00000000-0000-0000-0000-000000000000/positions?include=pending,settled,failed"
    "&cursor=eyJvZmZzZXQiOjEwMDAwMDAwLCJsaW1pdCI6MTAwfQ==",
]


def _drain():
    """Run every queued batch here, as a worker would, until none is due."""
    for _ in range(20):
        due = list(Batch.objects.filter(status__in=Batch.IN_FLIGHT).values_list("pk", flat=True))
        if not due:
            return
        Batch.objects.filter(pk__in=due).update(next_attempt_at=None)
        for pk in due:
            process_batch(pk)


def _demo_like_data(admin):
    from dlq.ingest import submit_batch

    ensure_demo_jobs()
    feed(Feed(random.Random(7)), 600)
    long_job = Job.objects.create(
        name=LONG_JOB, processor="test.fails_with", failure_strategy="send_to_dlq"
    )
    records = [{"message": m, "type": "SettlementReconciliationError"} for m in LONG_MESSAGES]
    submit_batch(long_job, [*records, {"ok": True}] * 3)
    _drain()
    actor = Actor.of_user(admin)
    group = ErrorGroup.objects.filter(job_name=LONG_JOB).order_by("-count").first()
    scope = requeue.RequeueScope.matching(error_group=group.pk).cut()
    requeue.run_here(scope, requeue.RequeueOptions(canary_size=2), actor)
    triage.set_group_status(ErrorGroup.objects.filter(pk=group.pk), "ignored", actor=actor)
    return group


def _pages(group):
    entry = DLQEntry.objects.filter(error_group=group).order_by("-pk").first()
    run = RequeueRun.objects.order_by("-pk").first()
    batch = Batch.objects.filter(job__name=LONG_JOB).first()
    occurrence = ErrorOccurrence.objects.filter(group=group).first()
    operator = {
        "health": "/dlq/health/",
        "errors": "/errors/?range=7d",
        "group": f"/errors/{group.pk}/",
    }
    admin = {
        "jobs": "/admin/dlq/job/",
        "entries": "/admin/dlq/dlqentry/",
        "entry": f"/admin/dlq/dlqentry/{entry.pk}/change/",
        "batches": "/admin/dlq/batch/",
        "batch": f"/admin/dlq/batch/{batch.pk}/change/",
        "groups": "/admin/errors/errorgroup/",
        "admin-group": f"/admin/errors/errorgroup/{group.pk}/change/",
        "occurrences": "/admin/errors/erroroccurrence/",
        "occurrence": f"/admin/errors/erroroccurrence/{occurrence.pk}/change/",
        "runs": "/admin/dlq/requeuerun/",
        "run": f"/admin/dlq/requeuerun/{run.pk}/change/",
        "audit": "/admin/dlq/operatoraction/",
        "attempts": "/admin/dlq/dlqattempt/",
    }
    return operator, admin


def _log_in(tab):
    tab.goto("/admin/login/?next=/admin/")
    tab.fill("#id_username", "ops")
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_selector("text=Operator pages")


def _overflow(tab):
    """How many pixels the page is wider than its window (0 when it fits)."""
    return tab.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


# The boxes a wide table or block scrolls in: at 1400 px none may hide a column (the Jobs
# list's DLQ health column was cut off inside one); on a phone they may scroll.
CUT_OFF = """() => [...document.querySelectorAll(
    '#changelist .results, .velo-scroll, fieldset.module, .inline-group, #content-main .module')]
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => (box.id || box.className) + ': ' + (box.scrollWidth - box.clientWidth) + ' px')"""
# On a phone a table may scroll sideways, but no row of it may be taller than the screen: a
# column squeezed to a word per line made each health row ~1,000 px tall.
SQUEEZED_ROWS = """(limit) => [...document.querySelectorAll('.velo-scroll tbody tr')]
  .filter(row => row.offsetHeight > limit)
  .map(row => (row.dataset.job || row.rowIndex) + ': ' + row.offsetHeight + ' px')"""


# An object page's tools (six of them on an entry) must not cover its title.
TOOLS_OVER_TITLE = """() => {
  const tools = document.querySelector('#content-main > .object-tools');
  const title = document.querySelector('#content > h2');
  if (!tools || !title) return false;
  const a = tools.getBoundingClientRect(), b = title.getBoundingClientRect();
  return a.top < b.bottom && b.top < a.bottom && a.left < b.right && b.left < a.right;
}"""


def test_operator_and_admin_pages_fit_a_laptop_and_operator_pages_fit_a_phone(
    page,  # noqa: F811
    django_user_model,
    transactional_db,
):
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    group = _demo_like_data(admin)
    assert len(LONG_JOB) > 60 and DLQEntry.objects.filter(job__name=LONG_JOB).count() == 6
    _log_in(page)

    operator, admin_pages = _pages(group)
    too_wide = {}
    for width, pages in ((LAPTOP, {**operator, **admin_pages}), (PHONE, operator)):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in pages.items():
            response = page.goto(url)
            assert response.status == 200, url
            shot(page, f"layout-{name}-{width}")
            if (over := _overflow(page)) > 0:
                too_wide[f"{name} at {width} px"] = over
            if width == LAPTOP and (cut := page.evaluate(CUT_OFF)):
                too_wide[f"{name} at {width} px, inside"] = cut
            if page.evaluate(TOOLS_OVER_TITLE):
                too_wide[f"{name} at {width} px, tools over the title"] = True
            if width == PHONE and (tall := page.evaluate(SQUEEZED_ROWS, 450)):
                too_wide[f"{name} at {width} px, rows squeezed tall"] = tall
    assert too_wide == {}, f"pages that do not fit their window: {too_wide}"


def test_times_read_relative_with_utc_on_hover(page, django_user_model, transactional_db):  # noqa: F811
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    group = _demo_like_data(admin)
    _log_in(page)
    operator, admin_pages = _pages(group)
    for name, url in {**operator, **admin_pages}.items():
        if name == "jobs":  # counters and health, no times
            continue
        page.goto(url)
        moments = page.locator("time[datetime][title$=' UTC']")
        assert moments.count() >= 1, f"{name}: no relative time with its UTC time on hover"
        first = moments.first
        assert first.inner_text().endswith("ago") or first.inner_text() == "just now", name
