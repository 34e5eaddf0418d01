"""Grouping failures in the database: keys that lead to groups, one group however many workers
race to make it, and groups made by the old rules that keep their errors after an upgrade."""

import threading
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection

from errors import fingerprint_v1 as v1
from errors.fingerprint import GROUPING_VERSION, fingerprint, normalize
from errors.models import ErrorGroup, GroupKey
from errors.services import Failure, group_failures

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MIGRATION = import_module("errors.migrations.0006_group_keys")


def fail(*messages, error_type="ValueError", job="orders", now=NOW):
    return group_failures(job, [Failure(error_type, m) for m in messages], now=now)


def version_1_group(message, *, job="orders", error_type="ValueError", seen=NOW):
    """A group as version 1 made it, before any key existed but its own."""
    group = ErrorGroup.objects.create(
        fingerprint=v1.fingerprint(job, error_type, message),
        job_name=job,
        error_type=error_type,
        template=v1.normalize(message),
        last_message=message,
        count=1,
        first_seen=seen,
        last_seen=seen,
        grouping_version=1,
    )
    GroupKey.objects.create(
        fingerprint=group.fingerprint,
        group=group,
        grouping_version=1,
        template=group.template,
        created_at=seen,
    )
    return group


@pytest.mark.django_db
def test_a_new_group_is_made_by_this_version_with_a_key_of_its_fingerprint():
    [group] = fail("Timeout after 3001 ms")
    assert group.grouping_version == GROUPING_VERSION
    assert group.fingerprint == fingerprint("orders", "ValueError", "Timeout after <*>")
    assert list(group.keys.values_list("fingerprint", "grouping_version")) == [
        (group.fingerprint, GROUPING_VERSION)
    ]


@pytest.mark.django_db
def test_failures_of_one_template_count_into_one_group_and_the_last_message_is_kept():
    groups = fail("Timeout after 3001 ms", "Missing 'x'", "Timeout after 12 ms")
    assert groups[0] == groups[2] != groups[1]
    groups[0].refresh_from_db()
    assert (groups[0].count, groups[0].last_message) == (2, "Timeout after 12 ms")
    assert ErrorGroup.objects.count() == GroupKey.objects.count() == 2


@pytest.mark.django_db
def test_a_version_1_group_keeps_its_errors_and_learns_their_new_key():
    old = version_1_group("Row 17 rejected")  # version 1: "Row <int> rejected"
    [group] = fail("Row 4 rejected")
    assert group == old
    assert GroupKey.objects.filter(group=old, grouping_version=GROUPING_VERSION).exists()
    # A message version 1 would have put elsewhere ("<float>") now finds it by its new key.
    [group] = fail("Row 4.5 rejected")
    assert group == old
    old.refresh_from_db()
    assert old.count == 3
    assert ErrorGroup.objects.count() == 1


@pytest.mark.django_db
def test_the_migration_gives_old_groups_their_new_keys_so_no_order_of_arrival_splits_them():
    old = version_1_group("Row 17 rejected", seen=NOW - timedelta(days=1))
    GroupKey.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(MIGRATION.BACKFILL_KEYS)
    MIGRATION.add_version_2_keys(apps, None)
    assert set(GroupKey.objects.values_list("grouping_version", flat=True)) == {1, 2}
    # The first message after the upgrade is one version 1 would have grouped elsewhere.
    [group] = fail("Row 4.5 rejected")
    assert group == old


@pytest.mark.django_db
def test_two_old_groups_that_the_new_rules_join_send_new_errors_to_the_one_seen_last():
    older = version_1_group("Field 'price': 'N/A' is bad", seen=NOW - timedelta(days=2))
    newer = version_1_group("Field 'price': 'abc' is bad", seen=NOW - timedelta(days=1))
    assert older.template != newer.template  # version 1 kept the quoted values
    MIGRATION.add_version_2_keys(apps, None)
    [group] = fail("Field 'price': 'xyz' is bad")
    assert group == newer


@pytest.mark.django_db(transaction=True)
def test_two_workers_making_the_same_new_group_make_one():
    """Each in its own connection and transaction, released together."""
    barrier = threading.Barrier(2)
    made, errors = [], []

    def worker():
        try:
            barrier.wait()
            from django.db import transaction

            with transaction.atomic():
                made.append(fail("Connection reset after 17 retries")[0].pk)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(set(made)) == 1
    assert ErrorGroup.objects.count() == 1
    assert GroupKey.objects.count() == 1
    assert ErrorGroup.objects.get().count == 2


def test_the_migration_uses_the_rules_of_version_2():
    assert MIGRATION.version_2.GROUPING_VERSION == 2
    assert MIGRATION.version_2.normalize("Row 4.5 rejected") == normalize("Row 4.5 rejected")
