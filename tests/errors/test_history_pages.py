"""/errors/ and /errors/<id>/: charts and tables from the rollups of real engine runs."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from dlq import backlog, redaction
from dlq import panels as dlq_panels
from dlq.models import DLQEntry
from errors.context import DeploymentContext
from errors.models import ErrorGroup, ErrorRollup
from tests.conftest import BAD, GOOD
from tests.dlq.factories import captured_tracebacks

NO_SYMBOL = BAD  # Missing required column 'symbol'
NO_PRICE = {"symbol": "ACME"}  # Missing required column 'price'
BAD_PRICE = {"symbol": "ACME", "price": "abc"}  # Invalid JSON in 'price' field
HISTORY_VIEWER = ("errors.view_errorgroup", "errors.view_erroroccurrence")
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def staff(login):
    """A staff user who may open the error history pages and read occurrences."""
    return login(*HISTORY_VIEWER)


@pytest.fixture
def dlq_viewer(login):
    """The same, also allowed to read DLQ entries (the group page's DLQ panel)."""
    return login(*HISTORY_VIEWER, "dlq.view_dlqentry")


@pytest.fixture
def fail(make_job, run_batch):
    """Run a batch of `records` on a job as if on the given node/region/version."""
    jobs = {}

    def run(records, *, job="orders", node="node-a", region="eu-west-1", version="1.0", **fields):
        if job not in jobs:
            jobs[job] = make_job(job, **fields)
        place = DeploymentContext(node_id=node, node_name=node, region=region, version=version)
        with override_settings(VELO_DEPLOYMENT=place):
            return run_batch(jobs[job], [*records, GOOD])

    return run


def group_of(template_part):
    return ErrorGroup.objects.get(template__contains=template_part)


def counts(response):
    """{template: count in range} of the groups table."""
    return {group.template: n for group, n in response.context["rows"]}


def test_history_shows_a_chart_and_every_group_with_its_counts(staff, fail):
    fail([NO_SYMBOL] * 3 + [NO_PRICE])
    fail([BAD_PRICE] * 2, job="payments")

    response = staff.get("/errors/")

    assert response.status_code == 200
    assert counts(response) == {
        "Missing required column 'symbol'": 3,
        "Invalid JSON in 'price' field": 2,
        "Missing required column 'price'": 1,
    }
    assert response.context["total"] == 6
    body = response.content.decode()
    assert '<svg class="velo-chart"' in body
    # The legend names the groups (quotes escaped) with their counts in range.
    assert "Missing required column &#x27;symbol&#x27; (3)" in body
    group = group_of("'symbol'")
    assert f'href="/errors/{group.pk}/?range=24h"' in body


def test_filter_by_node_shows_only_that_nodes_counts(staff, fail):
    fail([NO_SYMBOL] * 3, node="node-a")
    fail([NO_SYMBOL] * 2 + [NO_PRICE], node="node-b")

    only_a = staff.get("/errors/", {"node_id": "node-a"})
    only_b = staff.get("/errors/", {"node_id": "node-b"})
    both = staff.get("/errors/")

    assert counts(only_a) == {"Missing required column 'symbol'": 3}
    assert counts(only_b) == {
        "Missing required column 'symbol'": 2,
        "Missing required column 'price'": 1,
    }
    assert counts(both)["Missing required column 'symbol'"] == 5
    assert (only_a.context["total"], only_b.context["total"], both.context["total"]) == (3, 3, 6)
    nodes = dict((name, values) for name, _, values, _ in both.context["filters"])["node_id"]
    assert nodes == ["node-a", "node-b"]
    assert '<option value="node-a" selected>node-a</option>' in only_a.content.decode()


def test_filters_by_job_region_and_version(staff, fail):
    fail([NO_SYMBOL] * 2, version="1.0", region="eu-west-1")
    fail([NO_SYMBOL], version="2.0", region="us-east-1")
    fail([BAD_PRICE] * 4, job="payments", version="2.0", region="us-east-1")

    by_job = staff.get("/errors/", {"job_name": "payments"})
    by_version = staff.get("/errors/", {"version": "1.0"})
    by_region = staff.get("/errors/", {"region": "us-east-1", "job_name": "orders"})
    unknown = staff.get("/errors/", {"version": "9.9"})
    garbage = staff.get("/errors/", {"node_id": "a\x00b" + "x" * 5000, "range": "\x00"})

    assert counts(by_job) == {"Invalid JSON in 'price' field": 4}
    assert counts(by_version) == {"Missing required column 'symbol'": 2}
    assert counts(by_region) == {"Missing required column 'symbol'": 1}
    assert counts(unknown) == {}
    assert garbage.status_code == 200
    assert counts(garbage) == {}
    assert "No errors in this range." in unknown.content.decode()
    # A value chosen but not seen in the window stays selectable.
    assert '<option value="9.9" selected>9.9</option>' in unknown.content.decode()


def test_time_range_counts_only_the_buckets_inside_it(staff, fail):
    fail([NO_SYMBOL] * 2)
    fail([NO_PRICE] * 3)
    three_days_ago = timezone.now() - timedelta(days=3)
    price = ErrorRollup.objects.filter(group=group_of("'price'"))
    price.filter(grain="m").update(bucket=three_days_ago.replace(second=0, microsecond=0))
    price.filter(grain="h").update(bucket=three_days_ago.replace(minute=0, second=0, microsecond=0))
    price.filter(grain="d").update(
        bucket=three_days_ago.replace(hour=0, minute=0, second=0, microsecond=0)
    )

    day = staff.get("/errors/")
    hour = staff.get("/errors/", {"range": "1h"})
    six_hours = staff.get("/errors/", {"range": "6h"})
    week = staff.get("/errors/", {"range": "7d"})
    nonsense = staff.get("/errors/", {"range": "forever"})

    only_symbol = {"Missing required column 'symbol'": 2}
    assert counts(day) == counts(hour) == counts(six_hours) == only_symbol
    assert counts(week) == {
        "Missing required column 'symbol'": 2,
        "Missing required column 'price'": 3,
    }
    # Longer than a day: read from the daily rollups, a bucket a day.
    assert week.context["flt"].window.grain == "d"
    assert len(week.context["flt"].window.buckets()) == 7 + 1
    assert nonsense.status_code == 200
    assert nonsense.context["flt"].window.key == "24h"


def test_hostile_templates_node_names_and_versions_are_escaped(staff, fail):
    schema = {"type": "object", "required": [HOSTILE]}
    fail([{}], job="schemas", processor="json_schema", config={"schema": schema})
    fail([NO_SYMBOL], node=HOSTILE, version=f"v'{HOSTILE}")
    group = ErrorGroup.objects.get(job_name="schemas")
    assert "<script>alert(" in group.template  # the field name stays in the template

    pages = [
        staff.get("/errors/"),
        staff.get("/errors/", {"node_id": HOSTILE}),
        staff.get(f"/errors/{group.pk}/"),
        staff.get(f"/errors/{group_of('symbol').pk}/"),
    ]

    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert "<script>alert" not in body
        assert escaped in body
    chart = pages[0].content.decode().split('<svg class="velo-chart"')[1].split("</svg>")[0]
    assert escape(group.template)[:100] in chart
    version_chart = pages[3].content.decode().split('<svg class="velo-chart"')[1]
    assert f"version v&#x27;{escaped}" in version_chart.split("</svg>")[0]


def test_group_page_breaks_failures_down_by_node_version_and_region(staff, fail):
    fail([NO_SYMBOL] * 3, node="node-a", version="1.0")
    fail([NO_SYMBOL] * 2, node="node-a", version="1.1", region="us-east-1")
    fail([NO_SYMBOL] * 1, node="node-b", version="1.1")
    group = group_of("'symbol'")

    response = staff.get(f"/errors/{group.pk}/")

    assert response.status_code == 200
    breakdowns = {b["title"]: b for b in response.context["breakdowns"]}
    node = [(s.value, s.count, round(s.percent, 1)) for s in breakdowns["Node"]["rows"]]
    version = [(s.value, s.count) for s in breakdowns["Version"]["rows"]]
    region = [(s.value, s.count) for s in breakdowns["Region"]["rows"]]
    assert node == [("node-a", 5, 83.3), ("node-b", 1, 16.7)]
    assert version == [("1.0", 3), ("1.1", 3)]
    assert region == [("eu-west-1", 4), ("us-east-1", 2)]
    assert breakdowns["Node"]["hotspot"].value == "node-a"
    assert response.context["total"] == 6
    body = response.content.decode()
    assert 'data-value="node-a" data-count="5"' in body
    assert "83% of these failures on node <strong>node-a</strong>" in body
    assert "version 1.0 (3)" in body  # the timeline's legend, stacked by version


def test_group_page_lists_recent_occurrences_and_pending_dlq_entries(dlq_viewer, fail):
    staff = dlq_viewer
    fail([NO_SYMBOL] * 3)
    group = group_of("'symbol'")
    entries = list(DLQEntry.objects.filter(error_group=group).order_by("-id"))
    DLQEntry.objects.filter(pk=entries[-1].pk).update(status=DLQEntry.Status.RESOLVED)
    backlog.recount([group.pk])  # what a requeue that resolved it keeps

    response = staff.get(f"/errors/{group.pk}/")

    body = response.content.decode()
    [occurrence] = response.context["occurrences"]  # one batch attempt, one message
    assert occurrence.count == 3
    assert '<td class="num occurrence-count">×3</td>' in body
    assert (
        f"/admin/dlq/dlqentry/?batch__id__exact={occurrence.batch_id}"
        f"&amp;error_group__id__exact={group.pk}&amp;status__exact=all" in body
    )
    assert 'id="dlq-pending"' in body
    assert '<span class="dlq-pending-count">2</span>' in body
    for entry in entries[:2]:
        assert f'href="/admin/dlq/dlqentry/{entry.pk}/change/"' in body
    assert f'href="/admin/dlq/dlqentry/{entries[-1].pk}/change/"' not in body
    assert (
        f"/admin/dlq/dlqentry/?error_group__id__exact={group.pk}&amp;status__exact=pending" in body
    )


def test_dlq_panel_counts_the_whole_backlog_and_lists_the_latest(dlq_viewer, fail, monkeypatch):
    staff = dlq_viewer
    monkeypatch.setattr(dlq_panels, "SHOWN", 2)
    fail([NO_SYMBOL] * 5)

    body = staff.get(f"/errors/{group_of('symbol').pk}/").content.decode()

    assert '<span class="dlq-pending-count">5</span>' in body
    # Two listed entries, the newest as the sample, the list link twice, and the occurrence's
    # link to its batch's entries.
    assert body.count('href="/admin/dlq/dlqentry/') == 6


def test_dlq_panel_shows_the_sample_traceback_whole(dlq_viewer, fail, make_job):
    fail([NO_SYMBOL] * 3)
    entry = DLQEntry.objects.order_by("-pk").first()
    assert entry.traceback_head_id is not None  # stored per failure site
    whole = captured_tracebacks(entry.job, [NO_SYMBOL])[0]

    body = dlq_viewer.get(f"/errors/{group_of('symbol').pk}/").content.decode()

    assert f'id="sample-traceback">{escape(redaction.short_paths(whole))}</pre>' in body


def test_staff_without_the_dlq_permission_see_no_record_on_the_group_page(staff, fail):
    fail([{"price": 1, "card_number": "4111111111111111"}])
    body = staff.get(f"/errors/{group_of('symbol').pk}/").content.decode()
    assert 'id="dlq-closed"' in body
    assert "4111111111111111" not in body
    assert 'id="sample-payload"' not in body


def test_unknown_group_is_a_404(staff, db):
    assert staff.get("/errors/999999/").status_code == 404


@pytest.mark.parametrize("path", ["/errors/", "/errors/1/", "/dlq/health/"])
def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(client, django_user_model, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"

    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))
    assert client.get(path)["Location"] == f"/admin/login/?next={path}"


def test_admin_index_links_the_operator_pages(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert 'id="operator-pages"' in body
    assert 'href="/errors/"' in body
    assert 'href="/dlq/health/"' in body


def _queries(client, path, params=None):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path, params or {}).status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"node_id": "node-a", "range": "30d"}])
def test_query_count_does_not_grow_with_occurrences(
    staff, fail, django_assert_max_num_queries, params, monkeypatch
):
    monkeypatch.setattr(dlq_panels, "SHOWN", 1)  # so both data sets take the panel's count path
    fail([NO_SYMBOL, NO_PRICE])
    group = group_of("'symbol'")
    small = {path: _queries(staff, path, params) for path in ("/errors/", f"/errors/{group.pk}/")}

    for n in range(6):  # more occurrences, groups, nodes and versions
        records = [NO_SYMBOL] * 60 + [NO_PRICE] * 10 + [{"symbol": "X", "price": "p"}] * n
        fail(records, node=f"node-{n}", version=f"1.{n}")
    assert ErrorRollup.objects.count() > 10

    for path, count in small.items():
        with django_assert_max_num_queries(count):
            assert staff.get(path, params).status_code == 200
