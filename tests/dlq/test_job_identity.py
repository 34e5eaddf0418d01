"""Error groups belong to a job by id, not by name (issue 13, finding 9).

A renamed job keeps its history, and its pages and API show its new name; a
job made with the name of a job gone starts with no history of its own.
"""

from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone

from dlq import metrics
from errors import regroup as history
from errors.models import (
    ErrorGroup,
    ErrorOccurrence,
    ErrorPlace,
    ErrorRollup,
    ErrorTotal,
    ErrorVolume,
)
from errors.rules import NONE
from errors.services import Failure, group_failures
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.django_db

VIEWER = ("errors.view_errorgroup", "errors.view_erroroccurrence", "dlq.view_job")


def rename(job, name):
    job.name = name
    job.save()
    return job


def test_a_renamed_job_keeps_its_groups_and_they_show_its_new_name(make_job, run_batch, login):
    job = make_job("orders")
    run_batch(job, [BAD, GOOD])
    group = ErrorGroup.objects.get()

    rename(job, "orders-v2")
    run_batch(job, [BAD, GOOD])

    assert ErrorGroup.objects.count() == 1
    group.refresh_from_db()
    assert (group.count, group.job_name) == (2, "orders-v2")
    assert group.job_id == job.pk
    # An occurrence keeps the name it was recorded under; its group says the name now.
    recorded = ErrorOccurrence.objects.order_by("pk").values_list("job_name", flat=True)
    assert list(recorded) == ["orders", "orders-v2"]
    assert set(ErrorRollup.objects.values_list("job_name", flat=True)) == {"orders-v2"}
    assert set(ErrorVolume.objects.values_list("job_name", flat=True)) == {"orders-v2"}
    assert dict(ErrorTotal.objects.values_list("job_name", "occurrences")) == {"orders-v2": 2}
    jobs_listed = ErrorPlace.objects.filter(field="job_name").values_list("value", flat=True)
    assert list(jobs_listed) == ["orders-v2"]

    client = login(*VIEWER)
    page = client.get(f"/errors/{group.pk}/").content.decode()
    assert "<dt>Job</dt><dd>orders-v2</dd>" in page
    listed = login(superuser=True).get("/admin/errors/erroroccurrence/").content.decode()
    assert listed.count('<td class="field-job">orders-v2</td>') == 2
    history_page = client.get("/errors/", {"job_name": "orders-v2"})
    assert [g.pk for g, _ in history_page.context["rows"]] == [group.pk]
    health = client.get("/dlq/health/").context["rows"]
    assert [g.pk for g in health[0].top_errors] == [group.pk]


def test_the_api_and_metrics_show_a_renamed_jobs_new_name(make_job, run_batch, client, make_token):
    job = make_job("orders")
    run_batch(job, [BAD, GOOD])
    rename(job, "orders-v2")
    _, auth = make_token("reader", jobs=[job])
    response = client.get("/api/v1/errors", HTTP_AUTHORIZATION=auth)
    assert [g["job"] for g in response.json()["results"]] == ["orders-v2"]
    exposition = client.get("/metrics").content.decode()
    assert 'job_name="orders-v2"' in exposition
    assert 'job_name="orders"' not in exposition
    assert metrics.JOB == ["job_name"]  # SPEC §5's label names stay


def test_a_new_job_with_the_name_of_a_deleted_one_starts_clean(make_job, run_batch):
    old = make_job("orders")
    run_batch(old, [BAD, GOOD])
    run_batch(old, [BAD, GOOD])
    old_group = ErrorGroup.objects.get()
    assert old_group.count == 2
    old.delete()

    new = make_job("orders")
    run_batch(new, [BAD, GOOD])

    new_group = ErrorGroup.objects.exclude(pk=old_group.pk).get()
    assert (new_group.count, new_group.job_id, new_group.job_name) == (1, new.pk, "orders")
    old_group.refresh_from_db()
    assert (old_group.count, old_group.job_id, old_group.dlq_pending) == (2, None, 0)


def test_a_token_of_the_new_job_does_not_see_the_old_jobs_groups(
    make_job, run_batch, client, make_token
):
    old = make_job("orders")
    run_batch(old, [BAD, GOOD])
    old.delete()
    new = make_job("orders")
    run_batch(new, [{"symbol": "ACME"}, GOOD])
    _, auth = make_token("reader", jobs=[new])
    for query in ({}, {"job": "orders"}):
        results = client.get("/api/v1/errors", query, HTTP_AUTHORIZATION=auth).json()["results"]
        assert [g["id"] for g in results] == [ErrorGroup.objects.get(job_id=new.pk).pk], query
    stats = client.get("/api/v1/errors/stats", HTTP_AUTHORIZATION=auth).json()
    # Totals are kept per name, which the old job had too: counted from the new job's groups.
    assert (stats["total_errors"], stats["unique_errors"]) == (1, 1)


def test_renaming_onto_the_name_of_a_deleted_job_folds_the_counts_by_name(make_job, run_batch):
    gone = make_job("orders")
    run_batch(gone, [BAD, GOOD])
    gone.delete()
    job = make_job("trades")
    run_batch(job, [BAD, GOOD])

    rename(job, "orders")

    assert dict(ErrorTotal.objects.values_list("job_name", "occurrences")) == {"orders": 2}
    assert set(ErrorVolume.objects.values_list("job_name", flat=True)) == {"orders"}
    assert sum(ErrorVolume.objects.values_list("count", flat=True)) == 2 * 3  # minute, hour, day
    groups = dict(ErrorGroup.objects.values_list("job_id", "job_name"))
    assert groups == {None: "orders", job.pk: "orders"}


def test_a_regroup_of_a_renamed_job_finds_its_own_keys(make_job, run_batch):
    job = make_job("orders")
    run_batch(job, [BAD, {"symbol": "ACME"}, GOOD])
    rename(job, "orders-v2")
    plan = history.plan(job.name, NONE, job_id=job.pk, job_key=job.error_key)
    assert plan["report"]["new_groups"] == 0
    assert plan["report"]["groups_after"] == plan["report"]["groups_before"] == 2


def test_the_migrations_keep_each_jobs_groups_and_give_them_its_id(make_job, run_batch):
    jobs = import_module("dlq.migrations.0019_job_error_key")
    groups = import_module("errors.migrations.0009_group_job_id")
    job = make_job("orders")
    # Groups as they were made before: by job name, with no job id.
    failure = [Failure("RecordInvalid", "Missing required column 'symbol'")]
    now = timezone.now()
    [mine] = group_failures("orders", failure, now=now)
    [orphan] = group_failures("gone", failure, now=now)

    jobs.keys_are_names(apps, None)
    groups.ids_from_names(apps, None)

    job.refresh_from_db()
    assert job.error_key == "orders"
    run_batch(job, [BAD, GOOD])  # the job's next failure reaches the group it had
    mine.refresh_from_db()
    orphan.refresh_from_db()
    assert (mine.job_id, mine.count, orphan.job_id) == (job.pk, 2, None)
    assert ErrorGroup.objects.count() == 2


def test_a_new_jobs_key_is_never_a_name(make_job):
    first, second = make_job("orders"), make_job("trades")
    assert first.error_key != second.error_key
    assert first.error_key.startswith("job:") and ":" not in first.name
