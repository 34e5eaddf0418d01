"""Triage in a real browser (issue 11 item 5): the DLQ list opens on pending entries, narrows to
a group from the sidebar and to a job, finds a record by a value of its payload, and keeps all
of that through a bulk action. Screenshots land in test-artifacts/screenshots/ (triage-*)."""

import pytest

from dlq.models import DLQEntry, Job
from errors.models import ErrorGroup

from .test_browser import PASSWORD, STRICT, log_in, page, shot  # noqa: F401 (page is a fixture)

pytestmark = pytest.mark.e2e


def test_an_operator_triages_the_dlq_list_in_a_real_browser(page, django_user_model, run_batch):  # noqa: F811
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    orders = Job.objects.create(
        name="orders", processor="json_schema", config={"schema": STRICT}, dlq_max_size=None
    )
    payments = Job.objects.create(
        name="payments", processor="json_schema", config={"schema": STRICT}, dlq_max_size=None
    )
    missing = [{"trade_id": f"T-10{n:02d}", "price": f"{n},00"} for n in range(6)]
    wrong = [{"symbol": 5, "trade_id": "T-2001"}, {"symbol": 7, "trade_id": "T-2002"}]
    run_batch(orders, missing + wrong)
    run_batch(payments, [{"symbol": 9, "trade_id": "T-2001"}])  # the same trade id elsewhere
    resolved = DLQEntry.objects.filter(job=orders).order_by("pk").first()
    DLQEntry.objects.filter(pk=resolved.pk).update(status="resolved")
    wrong_type = ErrorGroup.objects.get(job_name="orders", template__contains="not of type")

    log_in(page, "/admin/dlq/dlqentry/")
    page.wait_for_selector("#result_list")
    shot(page, "triage-1-list")
    # Pending by default: the resolved entry is not listed, and the sidebar says why.
    assert page.locator("#result_list tbody tr").count() == 8
    status = page.locator("#changelist-filter details[data-filter-title=status]")
    assert status.locator("li.selected").inner_text() == "Pending"
    assert status.locator("a", has_text="All").count() == 1
    assert "Select a job to also search payload values." in page.inner_text("#changelist-search")
    assert f"#{wrong_type.pk}" in page.inner_text("#result_list")  # the group column
    assert "T-1005" in page.inner_text("#result_list")  # the record's excerpt

    # The group, from the sidebar; then its job.
    groups = page.locator("#changelist-filter details[data-filter-title='error group']")
    groups.locator("a", has_text="orders: Field 'symbol': not of type").click()
    page.wait_for_selector("#group-page")
    assert page.locator("#result_list tbody tr").count() == 2
    page.locator("#changelist-filter details[data-filter-title=job] a", has_text="orders").click()
    page.wait_for_selector("text=also a value of the record")
    shot(page, "triage-2-group-and-job")
    assert page.locator("#result_list tbody tr").count() == 2

    # A trade id from a ticket finds its record: in this job only.
    page.fill("#searchbar", "T-2001")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list tbody tr >> nth=0")
    assert page.locator("#result_list tbody tr").count() == 1
    [found] = DLQEntry.objects.filter(job=orders, payload__trade_id="T-2001")
    assert page.locator(f"#result_list a[href*='/dlqentry/{found.pk}/change/']").count() == 1
    shot(page, "triage-3-payload-search")
    filtered = page.url

    # A bulk action, and the operator is back on the very same list.
    page.locator("#result_list input[name=_selected_action]").check()
    page.select_option("select[name=action]", "discard_selected")
    page.click("button[name=index]")
    page.wait_for_selector("text=Discarded 1 pending entries.")
    shot(page, "triage-4-after-action")
    assert page.url == filtered
    assert page.input_value("#searchbar") == "T-2001"
    assert f"#{wrong_type.pk}" in page.inner_text("#changelist-filter")
    assert page.locator("#result_list tbody tr").count() == 0  # discarded: no longer pending
    found.refresh_from_db()
    assert found.status == "discarded"
    theirs = DLQEntry.objects.get(job=payments)
    assert theirs.status == "pending"  # the same trade id of another job was not touched
