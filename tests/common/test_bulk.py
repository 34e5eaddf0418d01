"""Counter rows written in one statement: created, added to, overwritten, never lost."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from common import bulk
from errors.models import ErrorPlace, ErrorTotal, ErrorVolume

T1 = datetime(2026, 11, 1, 10, tzinfo=UTC)
T2 = datetime(2026, 11, 1, 11, tzinfo=UTC)


def volume(job, count, bucket=T1, node="n1"):
    place = {"node_id": node, "region": "eu", "version": "1.0"}
    return {"grain": "h", "bucket": bucket, "job_name": job, **place, "count": count}


KEY = ["grain", "bucket", "job_name", "node_id", "region", "version"]


@pytest.mark.django_db
def test_new_rows_are_created_and_existing_ones_added_to():
    bulk.merge_rows(ErrorVolume, [volume("a", 2), volume("b", 5)], key=KEY, add=["count"])
    bulk.merge_rows(
        ErrorVolume, [volume("b", 1), volume("a", 3), volume("a", 7, T2)], key=KEY, add=["count"]
    )

    counts = {(v.job_name, v.bucket): v.count for v in ErrorVolume.objects.all()}
    assert counts == {("a", T1): 5, ("b", T1): 6, ("a", T2): 7}


@pytest.mark.django_db
def test_replaced_fields_take_the_new_value():
    rows = [{"field": "node_id", "value": "n1", "last_seen": T1}]
    bulk.merge_rows(ErrorPlace, rows, key=["field", "value"], replace=["last_seen"])
    rows[0]["last_seen"] = T2
    bulk.merge_rows(ErrorPlace, rows, key=["field", "value"], replace=["last_seen"])

    assert list(ErrorPlace.objects.values_list("value", "last_seen")) == [("n1", T2)]


@pytest.mark.django_db
def test_many_rows_are_split_over_statements(monkeypatch):
    monkeypatch.setattr(bulk, "MERGE_PARAMETERS", 20)  # three rows of seven values a statement
    rows = [volume(f"job-{n}", n) for n in range(10)]
    bulk.merge_rows(ErrorVolume, rows, key=KEY, add=["count"])
    bulk.merge_rows(ErrorVolume, rows, key=KEY, add=["count"])

    counts = dict(ErrorVolume.objects.values_list("job_name", "count"))
    assert counts == {f"job-{n}": 2 * n for n in range(10)}


def writers_in_opposite_orders(rows, write):
    """Four threads writing `rows` 25 times each, half of them in the opposite order (only
    locking in one order keeps their row locks from crossing); the errors they met."""
    barrier, errors = threading.Barrier(4), []

    def run(order):
        try:
            barrier.wait()
            for _ in range(25):
                with transaction.atomic():
                    write(order)
        except Exception as exc:  # reported in the test's own thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(o,)) for o in [rows, rows[::-1]] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers")
def test_concurrent_writers_of_the_same_rows_lose_no_count_and_never_deadlock():
    jobs = ["a", "b", "c", "d", "e"]

    def write(order):
        bulk.merge_rows(
            ErrorTotal,
            [{"job_name": job, "occurrences": 2} for job in order],
            key=["job_name"],
            add=["occurrences"],
        )

    assert writers_in_opposite_orders(jobs, write) == []
    assert dict(ErrorTotal.objects.values_list("job_name", "occurrences")) == {
        job: 4 * 25 * 2 for job in jobs
    }


def error_groups(n):
    from errors.models import ErrorGroup

    return [
        ErrorGroup.objects.create(
            fingerprint=f"fp-{i}",
            job_name="a",
            error_type="E",
            template=f"t{i}",
            last_message="old",
            first_seen=T1,
            last_seen=T1,
            count=i,
        )
        for i in range(n)
    ]


@pytest.mark.django_db
def test_update_rows_adds_and_overwrites_each_row_by_its_key_in_one_statement(monkeypatch):
    from errors.models import ErrorGroup

    groups = error_groups(5)
    rows = [
        {"pk": g.pk, "count": 10 * (i + 1), "last_seen": T2, "last_message": f"new {i}"}
        for i, g in enumerate(groups[:4])
    ]
    rows.append({"pk": groups[-1].pk + 1000, "count": 1, "last_seen": T2, "last_message": "x"})
    monkeypatch.setattr(bulk, "MERGE_PARAMETERS", 8)  # two rows of four values a statement

    bulk.update_rows(ErrorGroup, rows, add=["count"], replace=["last_seen", "last_message"])

    after = list(
        ErrorGroup.objects.order_by("pk").values_list("count", "last_seen", "last_message")
    )
    assert after == [
        (10, T2, "new 0"),
        (21, T2, "new 1"),
        (32, T2, "new 2"),
        (43, T2, "new 3"),
        (4, T1, "old"),  # not named: untouched; the pk with no row changed nothing
    ]
    assert ErrorGroup.objects.count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers")
def test_concurrent_update_rows_of_the_same_rows_lose_no_count_and_never_deadlock():
    from errors.models import ErrorGroup

    ids = [g.pk for g in error_groups(6)]

    def write(order):
        bulk.update_rows(ErrorGroup, [{"pk": pk, "count": 1} for pk in order], add=["count"])

    assert writers_in_opposite_orders(ids, write) == []
    counts = dict(ErrorGroup.objects.values_list("pk", "count"))
    assert counts == {pk: i + 100 for i, pk in enumerate(ids)}


@pytest.mark.django_db
def test_update_rows_takes_more_rows_than_sqlite_allows_terms_in_a_compound_select():
    """SQLite refuses a UNION of more than 500 SELECTs: a storm of 1,000 groups is one
    statement of VALUES."""
    from errors.models import ErrorGroup

    groups = error_groups(1200)
    bulk.update_rows(ErrorGroup, [{"pk": g.pk, "count": 1} for g in groups], add=["count"])
    assert list(ErrorGroup.objects.order_by("pk").values_list("count", flat=True)) == [
        i + 1 for i in range(1200)
    ]
