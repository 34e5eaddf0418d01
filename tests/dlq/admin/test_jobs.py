"""Jobs with live counters and health, and batches, in the admin."""

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext

from dlq.models import JobCounters


def test_job_pages_link_to_dlq_health_and_keep_live_counters(admin_client_, job, fail):
    fail(2)
    content = admin_client_.get("/admin/dlq/job/").content.decode()
    assert 'href="/dlq/health/"' in content
    assert ">2 / 100<" in content
    assert "HEALTHY" in content
    content = admin_client_.get(f"/admin/dlq/job/{job.pk}/change/").content.decode()
    assert 'href="/dlq/health/"' in content
    assert "Live counters" in content


def test_job_list_shows_live_counters_and_health(admin_client_, job):
    JobCounters.objects.filter(job=job).update(
        records_processed=200, records_failed=3, dlq_pending=80
    )
    content = admin_client_.get("/admin/dlq/job/").content.decode()
    assert "1.5 %" in content
    assert "80 / 100" in content
    assert "CAUTION - &gt;70% full" in content


def test_job_list_queries_do_not_grow_with_the_jobs(admin_client_, make_job):
    """The counters are joined to the jobs, not fetched per row."""
    make_job("first")
    with CaptureQueriesContext(connection) as one_job:
        assert admin_client_.get("/admin/dlq/job/").status_code == 200
    for n in range(30):
        make_job(f"job-{n}")
    with CaptureQueriesContext(connection) as many_jobs:
        assert admin_client_.get("/admin/dlq/job/").status_code == 200
    assert len(many_jobs) == len(one_job)


def test_job_add_page_has_no_counters(admin_client_, db):
    response = admin_client_.get("/admin/dlq/job/add/")
    assert response.status_code == 200
    assert "Live counters" not in response.content.decode()


def test_saving_a_job_never_writes_its_counters(admin_client_, job):
    """The engine counts while an operator edits: the form must not write stale numbers back."""
    JobCounters.objects.filter(job=job).update(records_processed=5, dlq_pending=2)
    response = admin_client_.post(
        f"/admin/dlq/job/{job.pk}/change/",
        # What a form holding counters would post back, read before the engine moved on.
        _job_form(job, max_retries=5, records_processed=0, dlq_pending=0),
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.max_retries == 5
    counters = JobCounters.objects.get(job=job)
    assert (counters.records_processed, counters.dlq_pending) == (5, 2)


def test_batch_list_filters_by_status_and_job(admin_client_, batch):
    response = admin_client_.get(
        f"/admin/dlq/batch/?status__exact=partial&job__id__exact={batch.job_id}"
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [batch]
    response = admin_client_.get("/admin/dlq/batch/?status__exact=failed")
    assert list(response.context["cl"].result_list) == []


def test_batch_list_leaves_the_records_out_of_its_query(admin_client_, batch):
    with CaptureQueriesContext(connection) as queries:
        admin_client_.get("/admin/dlq/batch/")
    rows = [q["sql"] for q in queries if 'FROM "dlq_batch"' in q["sql"] and "COUNT" not in q["sql"]]
    assert rows
    assert all('"dlq_batch"."records"' not in sql for sql in rows)


def _job_form(job, **changes):
    return {
        "name": job.name,
        "processor": job.processor,
        "config": json.dumps(job.config),
        "failure_strategy": job.failure_strategy,
        "enabled": "on",
        "max_retries": 3,
        "retry_initial_delay": 1.0,
        "retry_multiplier": 2.0,
        "retry_max_delay": 60.0,
        "dlq_enabled": "on",
        "dlq_max_size": 100,
        "dlq_full_policy": job.dlq_full_policy,
        "dlq_retention_days": 14,
        "failure_rate_warning_percent": 5,
        "record_timeout": 30,
        "batch_timeout": 240,
        **changes,
    }


def test_the_job_form_sets_time_limits_and_refuses_a_batch_limit_past_the_lease(admin_client_, job):
    page = admin_client_.get(f"/admin/dlq/job/{job.pk}/change/").content.decode()
    assert "Time limits" in page and 'name="record_timeout"' in page
    url = f"/admin/dlq/job/{job.pk}/change/"
    assert (
        admin_client_.post(url, _job_form(job, record_timeout=5, batch_timeout=60)).status_code
        == 302
    )
    job.refresh_from_db()
    assert (job.record_timeout, job.batch_timeout) == (5, 60)
    response = admin_client_.post(url, _job_form(job, batch_timeout=300))
    assert response.status_code == 200
    assert (
        "Must be below the batch lease, VELO_BATCH_LEASE_SECONDS (300 s)"
        in response.content.decode()
    )
    job.refresh_from_db()
    assert job.batch_timeout == 60


def test_the_job_form_refuses_a_schema_pattern_re2_cannot_run(admin_client_, make_job):
    job = make_job("schema", processor="json_schema", config={"schema": {"type": "object"}})
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(\\w)\\1$"}}}
    response = admin_client_.post(
        f"/admin/dlq/job/{job.pk}/change/", _job_form(job, config=json.dumps({"schema": schema}))
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "properties/id/pattern" in page and "RE2" in page
    job.refresh_from_db()
    assert job.config == {"schema": {"type": "object"}}


def test_renaming_a_job_in_the_admin_keeps_its_error_groups(admin_client_, job, fail):
    from errors.models import ErrorGroup

    fail(1)
    group = ErrorGroup.objects.get()
    url = f"/admin/dlq/job/{job.pk}/change/"
    assert admin_client_.post(url, _job_form(job, name="orders-v2")).status_code == 302
    job.refresh_from_db()
    fail(1)
    group.refresh_from_db()
    assert ErrorGroup.objects.count() == 1
    assert (group.count, group.job_name) == (2, "orders-v2")
