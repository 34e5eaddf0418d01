"""/dlq/health/: every job's DLQ health from its counters, coloured by the SPEC §5 status."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dlq.models import DLQEntry, JobCounters
from errors.models import ErrorGroup
from tests.conftest import BAD, GOOD


@pytest.fixture
def staff(login):
    """A staff user who may open the health page and see its top errors and entry links."""
    return login("dlq.view_job", "errors.view_errorgroup", "dlq.view_dlqentry")


def row_of(body, job_name):
    """The HTML of one job's row."""
    match = re.search(rf'<tr class="job-row [a-z]+" data-job="{job_name}">.*?</tr>', body, re.S)
    assert match, f"no row for {job_name}"
    return match.group(0)


@pytest.mark.parametrize(
    ("pending", "max_size", "status", "css"),
    [
        (10, 100, "HEALTHY", "healthy"),
        (70, 100, "CAUTION - &gt;70% full", "caution"),
        (95, 100, "WARNING - &gt;90% full", "warning"),
        (100, 100, "CRITICAL - at capacity", "critical"),
        (5000, None, "HEALTHY", "healthy"),
    ],
)
def test_each_job_shows_its_status_string_in_its_colour(
    staff, make_job, pending, max_size, status, css
):
    job = make_job("orders", dlq_max_size=max_size)
    JobCounters.objects.filter(job=job).update(dlq_pending=pending)

    response = staff.get("/dlq/health/")

    assert response.status_code == 200
    row = row_of(response.content.decode(), "orders")
    assert row.startswith(f'<tr class="job-row {css}"')
    assert f'<span class="velo-status {css}">{status}</span>' in row
    if max_size:
        assert f"{pending} / {max_size} ({pending:.1f}%)" in row
        assert f'<span class="velo-bar {css}"' in row
    else:
        assert f"{pending} / unbounded" in row


def test_failure_rate_oldest_pending_and_top_errors_come_from_real_runs(staff, make_job, run_batch):
    job = make_job("orders", dlq_max_size=1000)
    messages = [
        {"price": 1},
        {"symbol": "A"},
        {"symbol": "A", "price": "x"},
        {"symbol": "", "price": 1},
    ]
    run_batch(job, [*messages, *[GOOD] * 16])  # 4 of 20 fail: 20 %
    oldest = DLQEntry.objects.filter(job=job).order_by("id").first()
    DLQEntry.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(hours=3))
    idle = make_job("idle")

    response = staff.get("/dlq/health/")

    body = response.content.decode()
    row = row_of(body, "orders")
    assert "20.00%" in row  # all time
    assert "20.0%" in row  # the last hour
    assert "4 / 20" in row
    assert ">3\xa0h ago</time>" in row  # the oldest pending entry's age, UTC on hover
    top = next(r for r in response.context["rows"] if r.job == job).top_errors
    assert len(top) == 3
    for group in top:
        assert f'href="/errors/{group.pk}/"' in row
    assert ErrorGroup.objects.filter(job_name="orders").count() == 4
    assert f"?job__id__exact={job.pk}&amp;status__exact=pending" in row
    idle_row = row_of(body, "idle")
    assert "0.00%" in idle_row
    assert '<td class="oldest">–</td>' in idle_row
    assert idle.pk


def test_a_job_without_a_counters_row_still_renders(staff, make_job):
    make_job("orders")
    JobCounters.objects.all().delete()

    response = staff.get("/dlq/health/")

    assert response.status_code == 200
    assert '<span class="velo-status healthy">HEALTHY</span>' in response.content.decode()


def test_anonymous_users_are_redirected_to_login(client, db):
    response = client.get("/dlq/health/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/dlq/health/"


def _queries(client):
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/dlq/health/").status_code == 200
    return len(queries)


def test_queries_grow_with_jobs_only_not_with_entries(
    staff, make_job, run_batch, django_assert_max_num_queries
):
    jobs = [make_job("orders"), make_job("payments")]
    for job in jobs:
        run_batch(job, [BAD, GOOD])
    two_jobs = _queries(staff)

    for job in jobs:  # many more entries and groups, same jobs
        run_batch(job, [BAD] * 200 + [{"symbol": "A"}] * 50 + [GOOD])
    assert DLQEntry.objects.count() == 502
    with django_assert_max_num_queries(two_jobs):
        staff.get("/dlq/health/")

    make_job("refunds")
    make_job("fx")
    # One top-errors read per job; size, rate and oldest entry ride on the jobs query.
    assert _queries(staff) == two_jobs + 2


def _order(client):
    return [row.job.name for row in client.get("/dlq/health/").context["rows"]]


def test_the_worst_job_comes_first_then_the_one_failing_most_now(staff, make_job, run_batch):
    quiet, failing, full = make_job("a-quiet"), make_job("b-failing"), make_job("c-full")
    run_batch(quiet, [GOOD] * 10)
    run_batch(failing, [BAD] * 7 + [GOOD] * 3)
    JobCounters.objects.filter(job=full).update(dlq_pending=100_000)  # at capacity, not failing
    assert _order(staff) == ["c-full", "b-failing", "a-quiet"]


def test_a_job_failing_past_its_threshold_in_the_last_hour_is_flagged(staff, make_job, run_batch):
    strict = make_job("strict", failure_rate_warning_percent=5)
    lenient = make_job("lenient", failure_rate_warning_percent=50)
    for job in (strict, lenient):
        run_batch(job, [BAD] + [GOOD] * 9)  # 10 % of the last hour failed

    body = staff.get("/dlq/health/").content.decode()

    assert "FAILING 10% NOW" in row_of(body, "strict")
    assert "FAILING" not in row_of(body, "lenient")
    assert "1 failing more than its threshold in the last hour" in body
    assert '<span class="velo-status healthy">HEALTHY</span>' in row_of(body, "strict")


def test_failures_older_than_an_hour_no_longer_flag_the_job(staff, make_job, run_batch):
    from dlq.models import JobActivity

    job = make_job("orders")
    run_batch(job, [BAD] * 5)
    JobActivity.objects.update(minute=timezone.now() - timedelta(minutes=61))

    row = row_of(staff.get("/dlq/health/").content.decode(), "orders")

    assert "FAILING" not in row
    assert "no records" in row  # nothing in the last hour
    assert "100.00%" in row  # all time still says what happened


def test_top_errors_are_the_groups_with_most_records_waiting(staff, make_job, run_batch):
    job = make_job("orders", dlq_max_size=None)
    run_batch(job, [{"symbol": "A"}] * 6)  # 6 waiting: "Missing required column 'price'"
    run_batch(job, [BAD] * 2)  # 2 waiting, seen last
    big = ErrorGroup.objects.get(template__contains="'price'")
    from dlq import triage
    from dlq.actors import Actor

    # The most-seen group once all its entries are discarded waits for nothing.
    run_batch(job, [{"symbol": "A", "price": "x"}] * 9)
    drained = ErrorGroup.objects.get(template__contains="Invalid JSON")
    triage.discard(DLQEntry.objects.filter(error_group=drained), actor=Actor("ops", "admin"))

    top = next(r for r in staff.get("/dlq/health/").context["rows"]).top_errors

    assert [g.pk for g in top][:2] == [
        big.pk,
        ErrorGroup.objects.get(template__contains="'symbol'").pk,
    ]
    assert [g.dlq_pending for g in top] == [6, 2, 0]
    assert top[2].pk == drained.pk


def test_rejected_records_read_as_lost(staff, make_job, run_batch):
    job = make_job("orders", dlq_max_size=1, dlq_full_policy="reject")
    run_batch(job, [BAD] * 4)

    row = row_of(staff.get("/dlq/health/").content.decode(), "orders")

    assert "3 lost" in row


def test_the_page_reloads_itself(staff, make_job):
    make_job("orders")
    assert '<meta http-equiv="refresh" content="30">' in staff.get("/dlq/health/").content.decode()
