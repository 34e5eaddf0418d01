"""The admin shows every model, stays cheap on big tables, and never runs stored data as HTML."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.admin import EstimatedCountPaginator
from dlq import tokens
from dlq.models import ApiToken, Batch, DLQAttempt, DLQEntry, JobCounters
from errors.models import ErrorGroup, ErrorOccurrence, ErrorTotal

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def job(make_job):
    return make_job("orders", dlq_max_size=100)


@pytest.fixture
def batch(job):
    records = [{"symbol": "ACME", "price": n} for n in range(100)]
    return Batch.objects.create(
        job=job, records=records, record_count=len(records), status=Batch.Status.PARTIAL
    )


@pytest.fixture
def group(job):
    now = timezone.now()
    return ErrorGroup.objects.create(
        fingerprint="f" * 64,
        job_name=job.name,
        error_type="KeyError",
        template="Missing required column 'symbol' in row <int>",
        last_message="Missing required column 'symbol' in row 7",
        count=3,
        first_seen=now - timedelta(hours=1),
        last_seen=now,
    )


@pytest.fixture
def make_entries(job, batch, group):
    def make(count, payload=None):
        now = timezone.now()
        start = DLQEntry.objects.count()
        return DLQEntry.objects.bulk_create(
            DLQEntry(
                job=job,
                batch=batch,
                index=start + n,
                payload=payload or {"price": n},
                error_message=f"Missing required column 'symbol' in row {n}",
                error_type="KeyError",
                traceback="Traceback (most recent call last):\n  KeyError: 'symbol'",
                error_group=group,
                node_id="node-1",
                node_name="worker-a",
                region="eu-west-1",
                version="1.0.0",
                created_at=now,
                last_attempt_at=now,
            )
            for n in range(count)
        )

    return make


@pytest.fixture
def entry(make_entries):
    [entry] = make_entries(1, payload={"note": SCRIPT, "price": 1})
    DLQAttempt.objects.create(
        entry=entry,
        kind=DLQAttempt.Kind.ORIGINAL,
        started_by="worker",
        outcome=DLQAttempt.Outcome.FAILED,
        error_message="Missing required column 'symbol'",
        node_id="node-1",
        at=entry.created_at,
    )
    return entry


@pytest.fixture
def occurrence(group, batch, entry):
    return ErrorOccurrence.objects.create(
        group=group,
        occurred_at=timezone.now(),
        job_name=group.job_name,
        message="Missing required column 'symbol' in row 7",
        batch_id=batch.pk,
        dlq_entry_id=entry.pk,
        node_id="node-1",
        node_name="worker-a",
        region="eu-west-1",
        version="1.0.0",
    )


def test_anonymous_users_are_sent_to_the_login_page(client, db):
    response = client.get("/admin/dlq/dlqentry/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_every_model_has_a_changelist_with_its_rows(operator, entry, occurrence):
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
        response = operator.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url


def test_every_model_has_a_change_page_with_its_data(operator, job, batch, entry, occurrence):
    token, _ = tokens.create_token("ci")
    total = ErrorTotal.objects.create(job_name="orders", occurrences=3)
    attempt = entry.history.get()
    for url, text in [
        (f"/admin/dlq/job/{job.pk}/change/", "demo.trades"),
        (f"/admin/dlq/batch/{batch.pk}/change/", "ACME"),
        (f"/admin/dlq/dlqentry/{entry.pk}/change/", "eu-west-1"),
        (f"/admin/dlq/dlqattempt/{attempt.pk}/change/", "Missing required column"),
        (f"/admin/dlq/apitoken/{token.pk}/change/", token.prefix),
        (f"/admin/errors/errorgroup/{entry.error_group_id}/change/", "row 7"),
        (f"/admin/errors/erroroccurrence/{occurrence.pk}/change/", "worker-a"),
        (f"/admin/errors/errortotal/{total.pk}/change/", "orders"),
    ]:
        response = operator.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url


def test_job_list_shows_live_counters_and_health(operator, job):
    JobCounters.objects.filter(job=job).update(
        records_processed=200, records_failed=3, dlq_pending=80
    )
    content = operator.get("/admin/dlq/job/").content.decode()
    assert "1.5 %" in content
    assert "80 / 100" in content
    assert "CAUTION - &gt;70% full" in content


def test_job_list_queries_do_not_grow_with_the_jobs(operator, make_job):
    """The counters are joined to the jobs, not fetched per row."""
    make_job("first")
    with CaptureQueriesContext(connection) as one_job:
        assert operator.get("/admin/dlq/job/").status_code == 200
    for n in range(30):
        make_job(f"job-{n}")
    with CaptureQueriesContext(connection) as many_jobs:
        assert operator.get("/admin/dlq/job/").status_code == 200
    assert len(many_jobs) == len(one_job)


def test_big_lists_run_as_many_queries_for_many_rows_as_for_one(
    operator, job, batch, entry, occurrence
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
            assert operator.get(url).status_code == 200
        return len(queries)

    with_one_row = [queries_of(url) for url in urls]
    attempt = entry.history.get()
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


def test_job_add_page_has_no_counters(operator, db):
    response = operator.get("/admin/dlq/job/add/")
    assert response.status_code == 200
    assert "Live counters" not in response.content.decode()


def test_saving_a_job_never_writes_its_counters(operator, job):
    """The engine counts while an operator edits: the form must not write stale numbers back."""
    JobCounters.objects.filter(job=job).update(records_processed=5, dlq_pending=2)
    response = operator.post(
        f"/admin/dlq/job/{job.pk}/change/",
        {
            "name": job.name,
            "processor": job.processor,
            "config": "{}",
            "failure_strategy": job.failure_strategy,
            "enabled": "on",
            "max_retries": 5,
            "retry_initial_delay": 1.0,
            "retry_multiplier": 2.0,
            "retry_max_delay": 60.0,
            "dlq_enabled": "on",
            "dlq_max_size": 100,
            "dlq_full_policy": job.dlq_full_policy,
            "dlq_retention_days": 14,
            # What a form holding counters would post back, read before the engine moved on.
            "records_processed": 0,
            "dlq_pending": 0,
        },
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.max_retries == 5
    counters = JobCounters.objects.get(job=job)
    assert (counters.records_processed, counters.dlq_pending) == (5, 2)


def test_batch_list_filters_by_status_and_job(operator, batch):
    response = operator.get(
        f"/admin/dlq/batch/?status__exact=partial&job__id__exact={batch.job_id}"
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [batch]
    response = operator.get("/admin/dlq/batch/?status__exact=failed")
    assert list(response.context["cl"].result_list) == []


def test_batch_list_leaves_the_records_out_of_its_query(operator, batch):
    with CaptureQueriesContext(connection) as queries:
        operator.get("/admin/dlq/batch/")
    rows = [q["sql"] for q in queries if 'FROM "dlq_batch"' in q["sql"] and "COUNT" not in q["sql"]]
    assert rows
    assert all('"dlq_batch"."records"' not in sql for sql in rows)


@pytest.mark.parametrize("rows", [1, 60])
def test_dlq_list_runs_a_bounded_number_of_queries(
    operator, make_entries, django_assert_max_num_queries, rows
):
    """Session, user, the job filter's choices, the count and the page: never one per row."""
    make_entries(rows)
    with django_assert_max_num_queries(5):
        response = operator.get("/admin/dlq/dlqentry/")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_dlq_list_leaves_big_columns_out_and_runs_no_distinct(operator, make_entries):
    make_entries(3)
    with CaptureQueriesContext(connection) as queries:
        operator.get("/admin/dlq/dlqentry/?status__exact=pending")
    sqls = [q["sql"] for q in queries]
    assert not any("DISTINCT" in sql for sql in sqls)
    rows = [sql for sql in sqls if 'FROM "dlq_dlqentry"' in sql and "COUNT" not in sql]
    assert rows
    # Only an excerpt of the message is read, through SUBSTR (SUBSTRING on PostgreSQL).
    rows = [re.sub(r'SUBSTR\w*\("dlq_dlqentry"\."error_message"', "", sql) for sql in rows]
    for column in ("payload", "traceback", "error_message"):
        assert all(f'"dlq_dlqentry"."{column}"' not in sql for sql in rows)


def test_dlq_list_filters_by_status_job_and_created_date(operator, job, make_entries):
    make_entries(2)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = operator.get(
        "/admin/dlq/dlqentry/",
        {"status__exact": "pending", "job__id__exact": job.pk, "created_at__gte": since},
    )
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2
    response = operator.get("/admin/dlq/dlqentry/?status__exact=resolved")
    assert len(response.context["cl"].result_list) == 0


def test_dlq_list_links_to_one_error_group(operator, group, make_entries):
    make_entries(2)
    response = operator.get(f"/admin/dlq/dlqentry/?error_group__id__exact={group.pk}")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("{pk}", True),
        (" {pk} ", True),
        ("column 'symbol' in ROW", True),
        ("no such words", False),
        ("99999999999999999999999", False),
        ("100%_", False),
    ],
)
def test_dlq_search_finds_an_entry_by_id_or_by_words_of_its_message(operator, entry, term, found):
    """A number is an id; other text is looked up in the message (a trigram index on PostgreSQL);
    LIKE wildcards are taken literally and overflowing ids just find nothing."""
    response = operator.get("/admin/dlq/dlqentry/", {"q": term.format(pk=entry.pk)})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == ([entry] if found else [])


def test_dlq_entry_page_escapes_the_payload(operator, entry):
    content = operator.get(f"/admin/dlq/dlqentry/{entry.pk}/change/").content.decode()
    assert SCRIPT not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_dlq_entry_page_shows_record_error_traceback_context_and_history(operator, entry):
    content = operator.get(f"/admin/dlq/dlqentry/{entry.pk}/change/").content.decode()
    assert "<pre>{\n  &quot;note&quot;: " in content  # pretty-printed, indent 2
    assert "Missing required column &#x27;symbol&#x27; in row 0" in content
    assert "Traceback (most recent call last):" in content
    for context_value in ("node-1", "worker-a", "eu-west-1", "1.0.0"):
        assert context_value in content
    assert "Original processing" in content  # the attempt history inline


def test_dlq_entries_cannot_be_added_edited_or_deleted_in_bulk(operator, entry):
    response = operator.get("/admin/dlq/dlqentry/")
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert operator.get("/admin/dlq/dlqentry/add/").status_code == 403
    response = operator.post(f"/admin/dlq/dlqentry/{entry.pk}/change/", {"status": "resolved"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.status == DLQEntry.Status.PENDING


def test_engine_written_rows_cannot_be_added(operator, db):
    for url in (
        "/admin/dlq/batch/add/",
        "/admin/dlq/dlqattempt/add/",
        "/admin/dlq/apitoken/add/",
        "/admin/errors/errorgroup/add/",
        "/admin/errors/erroroccurrence/add/",
    ):
        assert operator.get(url).status_code == 403, url


def test_api_token_list_says_how_tokens_are_created_and_hides_the_hash(operator, db):
    token, _ = tokens.create_token("ci")
    content = operator.get("/admin/dlq/apitoken/").content.decode()
    assert "create_api_token" in content
    assert token.token_hash not in content
    content = operator.get(f"/admin/dlq/apitoken/{token.pk}/change/").content.decode()
    assert token.token_hash not in content


def test_revoke_action_revokes_the_selected_tokens(operator, db):
    keep, _ = tokens.create_token("keep")
    drop, _ = tokens.create_token("drop")
    response = operator.post(
        "/admin/dlq/apitoken/", {"action": "revoke", "_selected_action": [drop.pk]}
    )
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=drop.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=keep.pk).revoked_at is None


def test_error_group_list_filters_by_status(operator, group):
    response = operator.get("/admin/errors/errorgroup/?status__exact=unresolved")
    assert list(response.context["cl"].result_list) == [group]
    response = operator.get("/admin/errors/errorgroup/?status__exact=resolved")
    assert list(response.context["cl"].result_list) == []


def test_error_occurrences_filter_by_group(operator, occurrence):
    response = operator.get(
        f"/admin/errors/erroroccurrence/?group__id__exact={occurrence.group_id}"
    )
    assert list(response.context["cl"].result_list) == [occurrence]


def test_paginator_counts_exactly_when_the_list_is_filtered_or_small(entry):
    everything = DLQEntry.objects.order_by("-id")
    assert EstimatedCountPaginator(everything, 100).count == 1
    assert EstimatedCountPaginator(everything.filter(status="resolved"), 100).count == 0


class EstimateEverything(EstimatedCountPaginator):
    estimate_above = 0


def test_paginator_uses_the_planner_estimate_for_a_large_unfiltered_table(make_entries):
    """Rows added after ANALYZE are not in the estimate: proof that no COUNT(*) ran."""
    if connection.vendor != "postgresql":
        pytest.skip("pg_class.reltuples is PostgreSQL's")
    make_entries(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dlq_dlqentry")
    make_entries(2)
    assert EstimateEverything(DLQEntry.objects.order_by("-id"), 100).count == 3
    pending = DLQEntry.objects.filter(status="pending").order_by("-id")
    assert EstimateEverything(pending, 100).count == 5


def test_paginator_counts_exactly_on_sqlite(make_entries):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite has no planner estimate")
    make_entries(4)
    assert EstimateEverything(DLQEntry.objects.order_by("-id"), 100).count == 4
