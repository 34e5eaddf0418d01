"""A regroup run on a real worker over a few thousand DLQ entries, killed mid-way: it resumes on
another worker and ends with every count exact."""

from collections import Counter

import pytest
from django.db.models import Sum

from dlq import regroup
from dlq.actors import Actor
from dlq.models import DLQEntry, RegroupRun
from errors.models import ErrorGroup, ErrorOccurrence, ErrorRollup
from tests.dlq.factories import AUTH_USERS, auth_job, fail_with

from .harness import Worker, wait_for

pytestmark = pytest.mark.worker
RULES = [{"variables": [r"for (\S+) from"]}]
RECORDS = 3000


def totals():
    return (
        ErrorGroup.objects.aggregate(n=Sum("count"))["n"],
        ErrorRollup.objects.filter(grain="d").aggregate(n=Sum("count"))["n"],
        ErrorOccurrence.objects.aggregate(n=Sum("count"))["n"],
        DLQEntry.objects.count(),
    )


def test_a_regroup_killed_mid_way_resumes_and_ends_exact(transactional_db, tmp_path):
    job = auth_job()
    users = AUTH_USERS + [f"user{i}" for i in range(16)]
    messages = [
        f"Failed password for {users[i % len(users)]} from 10.0.{i % 250}.1 port 22"
        for i in range(RECORDS)
    ]
    for start in range(0, RECORDS, 1000):
        fail_with(job, messages[start : start + 1000])
    assert ErrorGroup.objects.count() == len(users)
    before = totals()

    slow = {"VELO_REGROUP_CHUNK": 10, "VELO_REQUEUE_CLAIM_SECONDS": 3}
    first = Worker(tmp_path, name="first", **slow).start()
    try:
        run = regroup.start_run(job, RULES, actor=Actor("ops", "shell"))
        wait_for(
            lambda: RegroupRun.objects.filter(pk=run.pk, moved_occurrences__gt=100).exists(),
            timeout=60,
            what="the run part of the way through the occurrences",
        )
        first.kill()
    finally:
        first.stop()
    run.refresh_from_db()
    assert run.status == "running"
    assert 0 < run.moved_occurrences < run.report["moved_occurrences"]

    second = Worker(tmp_path, name="second", **{**slow, "VELO_REGROUP_CHUNK": 500}).start()
    try:
        run = wait_for(
            lambda: RegroupRun.objects.filter(pk=run.pk, status="finished").first(),
            timeout=120,
            what=f"regroup run {run.pk} to finish on the second worker",
        )
    finally:
        second.stop()
        print(f"--- second worker log (tail)\n{second.log()[-3000:]}")

    assert run.moved_occurrences == run.report["moved_occurrences"]
    assert ErrorGroup.objects.count() == 1
    assert totals() == before
    [group] = ErrorGroup.objects.all()
    held = Counter()
    for group_id, n in ErrorOccurrence.objects.values_list("group_id", "count"):
        held[group_id] += n
    assert held == {group.pk: RECORDS} and group.count == RECORDS
    assert set(DLQEntry.objects.values_list("error_group_id", flat=True)) == {group.pk}
    hours = ErrorRollup.objects.filter(group=group, grain="h").aggregate(n=Sum("count"))["n"]
    assert hours == RECORDS
