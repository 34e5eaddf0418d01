"""Every model has its pages and data; engine-written rows stay read-only; no queries per row."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dlq import tokens
from dlq.models import Batch, DLQAttempt
from errors.models import ErrorOccurrence, ErrorTotal


def test_every_model_has_a_changelist_with_its_rows(admin_client_, attempt, occurrence):
    tokens.create_token("ci", can_requeue=True)
    ErrorTotal.objects.create(job_name="orders", occurrences=3)
    for url, text in [
        ("/admin/dlq/job/", "orders"),
        ("/admin/dlq/batch/", "Partial"),
        ("/admin/dlq/dlqentry/", "worker-a"),
        ("/admin/dlq/dlqattempt/", "Original processing"),
        ("/admin/dlq/apitoken/", "velo_"),
        ("/admin/errors/errorgroup/", "Missing required column"),
        ("/admin/errors/erroroccurrence/", "eu-west-1"),
        ("/admin/errors/errortotal/", "orders"),
    ]:
        response = admin_client_.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url


def test_every_model_has_a_change_page_with_its_data(
    admin_client_, job, batch, entry, attempt, occurrence
):
    token, _ = tokens.create_token("ci")
    total = ErrorTotal.objects.create(job_name="orders", occurrences=3)
    for url, text in [
        (f"/admin/dlq/job/{job.pk}/change/", "json_schema"),
        (f"/admin/dlq/batch/{batch.pk}/change/", "ACME"),
        (f"/admin/dlq/dlqentry/{entry.pk}/change/", "eu-west-1"),
        (f"/admin/dlq/dlqattempt/{attempt.pk}/change/", "Missing required column"),
        (f"/admin/dlq/apitoken/{token.pk}/change/", token.prefix),
        (f"/admin/errors/errorgroup/{entry.error_group_id}/change/", "row 7"),
        (f"/admin/errors/erroroccurrence/{occurrence.pk}/change/", "worker-a"),
        (f"/admin/errors/errortotal/{total.pk}/change/", "orders"),
    ]:
        response = admin_client_.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url


def test_big_lists_run_as_many_queries_for_many_rows_as_for_one(
    admin_client_, job, batch, entry, attempt, occurrence
):
    """Nothing is fetched per row: not a deferred column, not a relation."""
    urls = [
        "/admin/dlq/batch/",
        "/admin/dlq/dlqattempt/",
        "/admin/dlq/apitoken/",
        "/admin/errors/errorgroup/",
        "/admin/errors/erroroccurrence/",
    ]
    tokens.create_token("first", jobs=[job])

    def queries_of(url):
        with CaptureQueriesContext(connection) as queries:
            assert admin_client_.get(url).status_code == 200
        return len(queries)

    with_one_row = [queries_of(url) for url in urls]
    for n in range(12):
        tokens.create_token(f"token-{n}", jobs=[job])
        Batch.objects.create(job=job, records=[{}], record_count=1)
        ErrorOccurrence.objects.create(
            group=occurrence.group, occurred_at=timezone.now(), job_name="orders", message="x"
        )
        DLQAttempt.objects.create(
            entry=entry,
            kind=DLQAttempt.Kind.REQUEUE,
            started_by="operator",
            outcome=DLQAttempt.Outcome.FAILED,
            at=attempt.at,
        )
    assert [queries_of(url) for url in urls] == with_one_row


def test_engine_written_rows_cannot_be_added(admin_client_, db):
    for url in (
        "/admin/dlq/batch/add/",
        "/admin/dlq/dlqattempt/add/",
        "/admin/dlq/apitoken/add/",
        "/admin/errors/errorgroup/add/",
        "/admin/errors/erroroccurrence/add/",
    ):
        assert admin_client_.get(url).status_code == 403, url
