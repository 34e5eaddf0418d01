"""Pausing and resuming a job in a real browser, a real worker behind it. Screenshots land in
test-artifacts/screenshots/ (pause-*)."""

import pytest

from dlq.models import Batch, Job, OperatorAction

from .test_browser import PASSWORD, log_in, page, shot  # noqa: F401 (page is a fixture)

pytestmark = [pytest.mark.worker, pytest.mark.e2e]


def test_an_operator_pauses_a_job_sees_it_wait_and_resumes_it_at_a_rate(
    worker,
    api,
    page,  # noqa: F811
    django_user_model,
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    job = Job.objects.create(
        name="orders",
        processor="json_schema",
        config={"schema": {}},
        failure_strategy="send_to_dlq",
    )
    log_in(page, "/admin/dlq/job/")
    page.check(f"input[name=_selected_action][value='{job.pk}']")
    page.select_option("select[name=action]", "pause")
    page.click("button[name=index]")
    page.wait_for_selector("text=Paused orders")
    shot(page, "pause-job-list")

    ids = [api.submit("orders", [{"n": n}])["batch_id"] for n in range(3)]
    page.goto("/dlq/health/")
    row = page.locator("tr[data-job=orders]")
    assert "PAUSED" in row.inner_text() and "3 batches waiting" in row.inner_text()
    shot(page, "pause-health")
    assert set(Batch.objects.values_list("status", flat=True)) == {"queued"}

    page.goto("/admin/dlq/job/")
    page.check(f"input[name=_selected_action][value='{job.pk}']")
    page.select_option("select[name=action]", "resume")
    page.click("button[name=index]")
    page.wait_for_selector("#resume-jobs")
    assert "orders: 3 batches waiting" in page.inner_text("#resume-jobs")
    page.fill("#id_rate", "2")
    shot(page, "pause-resume-rate")
    page.click("input[type=submit][value=Resume]")
    page.wait_for_selector("text=2 batches a second")
    for batch_id in ids:
        assert api.wait_until_final(batch_id)["status"] == "succeeded"
    assert list(OperatorAction.objects.order_by("pk").values_list("action", "username")) == [
        ("pause", "ops"),
        ("resume", "ops"),
    ]
