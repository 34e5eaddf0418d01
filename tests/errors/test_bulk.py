"""Counter rows written in one statement: created, added to, overwritten, never lost."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from errors import bulk
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


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers")
def test_concurrent_writers_lose_no_count():
    barrier, errors = threading.Barrier(4), []

    def add():
        try:
            barrier.wait()
            for _ in range(25):
                with transaction.atomic():
                    bulk.merge_rows(
                        ErrorTotal,
                        [{"job_name": "orders", "occurrences": 2}],
                        key=["job_name"],
                        add=["occurrences"],
                    )
        except Exception as exc:  # reported below, in the test's own thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert ErrorTotal.objects.get(job_name="orders").occurrences == 4 * 25 * 2
