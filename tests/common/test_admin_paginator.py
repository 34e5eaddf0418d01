"""The paginators count exactly when they must and estimate a big table, or a big filtered
list, on PostgreSQL."""

import itertools

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.admin import BoundedCountPaginator, EstimatedCountPaginator

pytestmark = pytest.mark.django_db
_names = itertools.count()


def make_rows(count):
    Group.objects.bulk_create(Group(name=f"group-{next(_names)}") for _ in range(count))


class EstimateEverything(EstimatedCountPaginator):
    estimate_above = 0


def test_paginator_counts_exactly_when_the_list_is_filtered_or_small():
    make_rows(1)
    everything = Group.objects.order_by("-id")
    assert EstimatedCountPaginator(everything, 100).count == 1
    assert EstimatedCountPaginator(everything.filter(name="nobody"), 100).count == 0


def make_analysed_rows(count):
    """Rows the planner knows of (PostgreSQL only: the estimates are its)."""
    if connection.vendor != "postgresql":
        pytest.skip("the planner's estimates are PostgreSQL's")
    make_rows(count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE auth_group")


def test_paginator_uses_the_planner_estimate_for_a_large_unfiltered_table():
    """Rows added after ANALYZE are not in the estimate: proof that no COUNT(*) ran."""
    make_analysed_rows(3)
    make_rows(2)
    assert EstimateEverything(Group.objects.order_by("-id"), 100).count == 3
    named = Group.objects.filter(name__startswith="group-").order_by("-id")
    assert EstimateEverything(named, 100).count == 5


def test_paginator_counts_exactly_on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite has no planner estimate")
    make_rows(4)
    assert EstimateEverything(Group.objects.order_by("-id"), 100).count == 4


class CountTwoExactly(BoundedCountPaginator):
    count_exactly_up_to = 2


def named_groups():
    return Group.objects.filter(name__startswith="group-").order_by("-id")


def test_bounded_paginator_counts_a_filtered_list_exactly_up_to_its_bound():
    make_rows(2)
    paginator = CountTwoExactly(named_groups(), 100)
    assert (paginator.count, paginator.count_is_estimate) == (2, False)
    assert CountTwoExactly(named_groups().filter(name="nobody"), 100).count == 0


def test_bounded_paginator_estimates_a_filtered_list_beyond_its_bound():
    """Beyond the bound it counts no further: a LIMITed count, then the planner's estimate."""
    make_analysed_rows(40)
    paginator = CountTwoExactly(named_groups(), 2)  # more than a page: counted, not listed
    with CaptureQueriesContext(connection) as queries:
        counted = paginator.count
    assert paginator.count_is_estimate
    assert counted >= 3
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"]]
    assert counts and all("LIMIT 3" in sql for sql in counts)


def test_bounded_paginator_counts_exactly_on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite has no planner estimate")
    make_rows(5)
    paginator = CountTwoExactly(named_groups(), 2)
    assert (paginator.count, paginator.count_is_estimate) == (5, False)


def test_bounded_paginator_counts_a_list_that_fits_on_its_first_page_from_its_rows():
    make_rows(3)
    paginator = CountTwoExactly(named_groups(), 100)
    with CaptureQueriesContext(connection) as queries:
        assert (paginator.count, paginator.count_is_estimate) == (3, False)
        assert len(paginator.page(1).object_list) == 3
    [query] = queries
    assert "COUNT(" not in query["sql"]
