"""Occurrences are counted (SPEC §3): a storm batch writes a row per group and message, and
every page, API, metric and chart still shows each failure."""

import re

import pytest
from django.db.models import Sum

from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup, ErrorVolume
from tests.conftest import BAD, GOOD
from tests.metrics.scraping import parse

pytestmark = pytest.mark.django_db
STORM = 1000
NO_SYMBOL = "Missing required column 'symbol'"


def bucket_totals(body):
    """The chart's per-bucket totals (data-total of its bucket columns), the empty ones left out."""
    return [
        int(n) for n in re.findall(r'class="velo-bucket"[^>]*data-total="(\d+)"', body) if n != "0"
    ]


def test_a_storm_batch_writes_one_counted_occurrence_and_every_surface_shows_each_failure(
    make_job, run_batch, login, make_token, client
):
    job = make_job(failure_strategy="send_to_dlq")
    batch = run_batch(job, [BAD] * STORM + [GOOD])
    group = ErrorGroup.objects.get()

    [row] = ErrorOccurrence.objects.values_list("group_id", "batch_id", "message", "count")
    assert row == (group.pk, batch.pk, NO_SYMBOL, STORM)
    assert group.count == STORM
    for grain in ("m", "h", "d", "w"):
        assert ErrorRollup.objects.filter(grain=grain).aggregate(n=Sum("count"))["n"] == STORM
    assert ErrorVolume.objects.filter(grain="h").get().count == STORM

    admin = login(superuser=True)
    history = admin.get("/errors/")
    assert [(g.pk, n) for g, n in history.context["rows"]] == [(group.pk, STORM)]
    assert history.context["total"] == STORM
    assert bucket_totals(history.content.decode()) == [STORM]

    page = admin.get(f"/errors/{group.pk}/")
    body = page.content.decode()
    assert page.context["total"] == STORM
    assert bucket_totals(body) == [STORM]
    node = page.context["breakdowns"][0]["rows"]
    assert [share.count for share in node] == [STORM]
    assert '<td class="num occurrence-count">×1000</td>' in body
    entries_link = (
        f"/admin/dlq/dlqentry/?batch__id__exact={batch.pk}&error_group__id__exact={group.pk}"
        "&status__exact=all"
    )
    assert entries_link.replace("&", "&amp;") in body
    assert admin.get(entries_link).context["cl"].result_count == STORM

    listed = admin.get("/admin/errors/erroroccurrence/").content.decode()
    assert "×1000" in listed
    [occurrence] = ErrorOccurrence.objects.all()
    detail = admin.get(f"/admin/errors/erroroccurrence/{occurrence.pk}/change/").content.decode()
    assert "×1000" in detail
    assert entries_link.replace("&", "&amp;") in detail

    _, auth = make_token()
    [listed_group] = client.get("/api/v1/errors", HTTP_AUTHORIZATION=auth).json()["results"]
    assert listed_group["count"] == STORM
    stats = client.get("/api/v1/errors/stats", HTTP_AUTHORIZATION=auth).json()
    assert (stats["total_errors"], stats["top"][0]["count"]) == (STORM, STORM)

    families = parse(client.get("/metrics").content.decode())
    [total] = families["velo_error_messages"].samples
    assert total.value == STORM
    [message] = families["velo_error_message"].samples
    assert (message.labels["job_name"], message.value) == ("orders", STORM)


def test_distinct_messages_of_one_group_in_a_batch_are_one_row_each(make_job, run_batch):
    job = make_job(processor="test.fails_on", failure_strategy="send_to_dlq")
    failing = [3001] * 2 + [2950] * 3 + [17]
    batch = run_batch(job, [{"fail": True, "ms": ms} for ms in failing] + [{"ok": 1}])

    group = ErrorGroup.objects.get()  # the numbers are variables: one group
    rows = ErrorOccurrence.objects.filter(group=group, batch_id=batch.pk)
    assert sorted(rows.values_list("message", "count")) == [
        ("Timeout after 17 ms", 1),
        ("Timeout after 2950 ms", 3),
        ("Timeout after 3001 ms", 2),
    ]
    assert group.count == 6
    assert ErrorRollup.objects.filter(group=group, grain="h").get().count == 6


def test_each_attempt_of_a_retried_batch_is_a_row_of_its_own(make_job, run_batch):
    job = make_job(failure_strategy="retry_with_backoff", max_retries=2)
    batch = run_batch(job, [BAD] * 4 + [GOOD])

    assert batch.attempts == 3
    counted = ErrorOccurrence.objects.order_by("pk").values_list("count", flat=True)
    assert list(counted) == [4, 4, 4]
    assert ErrorGroup.objects.get().count == 12
