"""The paginator counts exactly when it must and estimates a big whole table on PostgreSQL."""

import itertools

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from common.admin import EstimatedCountPaginator

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


def test_paginator_uses_the_planner_estimate_for_a_large_unfiltered_table():
    """Rows added after ANALYZE are not in the estimate: proof that no COUNT(*) ran."""
    if connection.vendor != "postgresql":
        pytest.skip("pg_class.reltuples is PostgreSQL's")
    make_rows(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE auth_group")
    make_rows(2)
    assert EstimateEverything(Group.objects.order_by("-id"), 100).count == 3
    named = Group.objects.filter(name__startswith="group-").order_by("-id")
    assert EstimateEverything(named, 100).count == 5


def test_paginator_counts_exactly_on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite has no planner estimate")
    make_rows(4)
    assert EstimateEverything(Group.objects.order_by("-id"), 100).count == 4
