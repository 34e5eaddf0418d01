"""The management commands (SPEC §9), run as an operator runs them, through call_command."""

import json
import random
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from demo import feed as demo
from dlq.ingest import reader
from dlq.models import Batch, Job, JobCounters

pytestmark = pytest.mark.django_db

SPEC_KEYS = {
    "job",
    "current_size",
    "max_size",
    "capacity_usage_percent",
    "is_at_capacity",
    "entries_added",
    "entries_rejected",
    "last_entry_time",
    "last_capacity_exceeded_time",
    "status",
}


def run(*args, stdin=None):
    """Run a command; return (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    kwargs = {"stdin": stdin} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def trades(count, start=0):
    return [{"symbol": f"S{i}", "price": i + 0.5} for i in range(start, start + count)]


def jsonl(records):
    return "".join(json.dumps(record) + "\n" for record in records)


def submitted_records(job):
    return [r for b in Batch.objects.filter(job=job).order_by("pk") for r in b.records]


# sync_jobs


JOBS_TOML = """
[[jobs]]
name = "orders"
processor = "json_schema"
failure_strategy = "send_to_dlq"
dlq_max_size = 0
[jobs.config.schema]
type = "object"
required = ["symbol"]

[[jobs]]
name = "ledger"
processor = "demo.trades"
failure_strategy = "fail_batch"
max_retries = 2
"""


def test_sync_jobs_creates_then_a_second_run_reports_everything_unchanged(tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text(JOBS_TOML)

    first, _ = run("sync_jobs", str(path))
    second, _ = run("sync_jobs", str(path))

    assert "created: orders" in first
    assert "created: ledger" in first
    assert "2 created, 0 updated, 0 unchanged" in first
    assert "unchanged: orders" in second
    assert "0 created, 0 updated, 2 unchanged" in second
    assert Job.objects.get(name="orders").dlq_max_size is None
    assert Job.objects.get(name="ledger").max_retries == 2


def test_sync_jobs_prints_what_an_update_changes(tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text(JOBS_TOML)
    run("sync_jobs", str(path))
    path.write_text(JOBS_TOML.replace("max_retries = 2", "max_retries = 4"))

    out, _ = run("sync_jobs", str(path))

    assert "updated: ledger (max_retries 2 -> 4)" in out
    assert Job.objects.get(name="ledger").max_retries == 4


def test_sync_jobs_refuses_a_bad_file_whole_naming_job_and_field(tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text(JOBS_TOML + '\n[[jobs]]\nname = "x"\nprocessor = "nope"\nretries = 1\n')

    with pytest.raises(CommandError) as caught:
        run("sync_jobs", str(path))

    message = str(caught.value)
    assert "refused, no job was changed" in message
    assert 'job "x", field "processor"' in message
    assert 'job "x", field "retries": unknown field' in message
    assert not Job.objects.exists()


def test_sync_jobs_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text(JOBS_TOML)

    out, _ = run("sync_jobs", str(path), "--dry-run")

    assert "would be created: orders" in out
    assert not Job.objects.exists()


# submit_batch


def test_submit_batch_reads_a_json_array_file(make_job, tmp_path):
    job = make_job("orders")
    path = tmp_path / "records.json"
    path.write_text(json.dumps(trades(5), indent=2))

    out, err = run("submit_batch", "orders", str(path))

    [batch] = Batch.objects.filter(job=job)
    assert batch.records == trades(5)
    assert batch.status == Batch.Status.QUEUED
    assert f"Submitted 5 records to job 'orders' in 1 batch(es): ids {batch.pk}." in out
    assert "5 records" in err  # the progress bar


def test_submit_batch_reads_a_jsonl_file_and_splits_it_by_batch_size(make_job, tmp_path):
    job = make_job("orders")
    path = tmp_path / "records.jsonl"
    path.write_text(jsonl(trades(25)))

    run("submit_batch", "orders", str(path), "--batch-size", "10")

    batches = Batch.objects.filter(job=job).order_by("pk")
    assert [b.record_count for b in batches] == [10, 10, 5]
    assert submitted_records(job) == trades(25)


def test_submit_batch_reads_stdin_given_as_dash(make_job):
    job = make_job("orders")

    out, _ = run(
        "submit_batch", "orders", "-", "--batch-size", "2", stdin=StringIO(jsonl(trades(3)))
    )

    assert submitted_records(job) == trades(3)
    assert Batch.objects.filter(job=job).count() == 2
    assert "Submitted 3 records" in out


def test_submit_batch_skips_blank_lines_and_a_byte_order_mark(make_job, tmp_path):
    job = make_job("orders")
    path = tmp_path / "records.jsonl"
    path.write_text("\ufeff" + jsonl(trades(1)) + "\n   \n" + jsonl(trades(1, start=1)))

    run("submit_batch", "orders", str(path))

    assert submitted_records(job) == trades(2)


def test_a_broken_jsonl_line_stops_with_its_line_and_what_was_already_submitted(make_job, tmp_path):
    job = make_job("orders")
    lines = jsonl(trades(25)).splitlines(keepends=True)
    lines[22] = '{"symbol": "X", "price": 1,,}\n'  # line 23, in the third batch
    path = tmp_path / "records.jsonl"
    path.write_text("".join(lines))

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", str(path), "--batch-size", "10")

    message = str(caught.value)
    assert "line 23: not valid JSON" in message
    assert "Already submitted before it: 20 records in 2 batch(es)" in message
    assert "from line 21 on" in message
    # The batches before the broken one are kept; nothing of the broken one is.
    assert submitted_records(job) == trades(20)


def test_a_record_that_is_not_an_object_is_refused_with_its_line(make_job):
    make_job("orders")

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", "-", stdin=StringIO(jsonl(trades(2)) + "[1, 2]\n"))

    assert "line 3: expected a JSON object, got an array" in str(caught.value)
    assert "Nothing was submitted." in str(caught.value)
    assert not Batch.objects.exists()


def test_a_record_velo_cannot_store_is_refused_with_its_line(make_job):
    make_job("orders")
    records = [*trades(2), {"symbol": "A\u0000B", "price": 1}]

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", "-", stdin=StringIO(jsonl(records)))

    assert "line 3: " in str(caught.value)
    assert "NUL" in str(caught.value)
    assert not Batch.objects.exists()


def test_a_broken_json_array_stops_with_its_line(make_job, tmp_path):
    make_job("orders")
    path = tmp_path / "records.json"
    path.write_text('[\n  {"symbol": "A", "price": 1},\n  {"symbol": "B" "price": 2}\n]\n')

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", str(path))

    assert "line 3: not valid JSON" in str(caught.value)
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"price": 1},]', "line 1: not valid JSON"),
        ('[{"price": 1}', "line 1: the array is not closed"),
        ('[{"price": 1}] {"x": 1}', "line 1: unexpected data after"),
        ('[{"price": 1} {"x": 1}]', "line 1: expected ',' or ']'"),
    ],
)
def test_a_malformed_json_array_is_refused(make_job, text, expected):
    make_job("orders")

    with pytest.raises(CommandError) as caught:
        run("submit_batch", "orders", "-", stdin=StringIO(text))

    assert expected in str(caught.value)
    assert not Batch.objects.exists()


@pytest.mark.parametrize("fmt", ["array", "jsonl"])
def test_records_cut_by_the_read_chunk_are_read_whole(make_job, monkeypatch, fmt):
    """The input is read in chunks; a record (or a number) split between two must come out whole."""
    monkeypatch.setattr(reader, "CHUNK_CHARS", 7)
    job = make_job("orders")
    records = [{"symbol": "ACME", "price": 123456789, "note": "x" * 40}, *trades(30)]
    text = json.dumps(records, indent=1) if fmt == "array" else jsonl(records)

    run("submit_batch", "orders", "-", "--batch-size", "7", stdin=StringIO(text))

    assert submitted_records(job) == records


def test_rerunning_with_the_same_idempotency_key_submits_only_what_is_missing(make_job):
    job = make_job("orders")
    command = ("submit_batch", "orders", "-", "--batch-size", "5", "--idempotency-key", "load-1")
    broken = jsonl(trades(10)) + "not json\n" + jsonl(trades(5, start=10))
    with pytest.raises(CommandError) as caught:
        run(*command, stdin=StringIO(broken))
    assert "rerun with --idempotency-key load-1 --batch-size 5" in str(caught.value)

    out, _ = run(*command, stdin=StringIO(jsonl(trades(15))))

    assert submitted_records(job) == trades(15)
    assert "Submitted 5 records" in out
    assert "2 batch(es) had already been submitted" in out


def test_submit_batch_to_an_unknown_job_names_the_known_ones(make_job):
    make_job("orders")

    with pytest.raises(CommandError, match=r"no job named 'nope' \(known jobs: orders\)"):
        run("submit_batch", "nope", "-", stdin=StringIO(jsonl(trades(1))))


def test_submit_batch_refuses_a_batch_size_over_the_limit(make_job, settings):
    make_job("orders")
    settings.VELO_MAX_BATCH_RECORDS = 100

    with pytest.raises(CommandError, match="--batch-size must be between 1 and 100"):
        run("submit_batch", "orders", "-", "--batch-size", "101", stdin=StringIO(""))


def test_submit_batch_of_empty_input_submits_nothing(make_job):
    make_job("orders")

    out, _ = run("submit_batch", "orders", "-", stdin=StringIO("[]"))

    assert "nothing was submitted" in out
    assert not Batch.objects.exists()


# dlq_health


def test_dlq_health_json_has_exactly_the_spec_keys_and_the_status(make_job):
    job = make_job("orders", dlq_max_size=100)
    make_job("unbounded", dlq_max_size=None)
    JobCounters.objects.filter(job=job).update(dlq_pending=95, dlq_added=120, dlq_rejected=3)

    out, _ = run("dlq_health", "--json")

    orders, unbounded = json.loads(out)
    assert set(orders) == SPEC_KEYS
    assert orders["job"] == "orders"
    assert orders["current_size"] == 95
    assert orders["max_size"] == 100
    assert orders["capacity_usage_percent"] == 95.0
    assert orders["is_at_capacity"] is False
    assert orders["entries_added"] == 120
    assert orders["entries_rejected"] == 3
    assert orders["status"] == "WARNING - >90% full"
    assert unbounded["max_size"] is None
    assert unbounded["status"] == "HEALTHY"


def test_dlq_health_prints_a_table_row_per_job(make_job):
    job = make_job("orders", dlq_max_size=100)
    JobCounters.objects.filter(job=job).update(dlq_pending=100, dlq_added=100)

    out, _ = run("dlq_health")

    header, row = out.splitlines()
    assert header.split()[:6] == ["JOB", "SIZE/MAX", "USAGE", "STATUS", "ADDED", "REJECTED"]
    assert row.startswith("orders")
    assert "100/100" in row
    assert "100.0%" in row
    assert "CRITICAL - at capacity" in row


def test_dlq_health_json_is_an_empty_list_without_jobs(db):
    out, _ = run("dlq_health", "--json")

    assert json.loads(out) == []


# velo_demo


def test_velo_demo_creates_the_demo_jobs_and_submits_the_records(db):
    out, _ = run("velo_demo", "--records", "300")

    jobs = {job.name: job for job in Job.objects.all()}
    assert set(jobs) == {"trades", "orders", "ledger", "flaky-feed", "payments"}
    assert {job.failure_strategy for job in jobs.values()} == {
        "log_and_continue",
        "send_to_dlq",
        "fail_batch",
        "retry_with_backoff",
    }
    assert jobs["orders"].dlq_max_size == 5000
    batches = Batch.objects.all()
    assert sum(b.record_count for b in batches) == 300
    assert {b.job.name for b in batches} == set(jobs)  # every job gets traffic
    assert all(b.record_count <= 100 for b in batches)
    assert "Created demo jobs" in out
    assert "Submitted 300 records" in out


def is_bad(record):
    return not record.get("symbol") or not isinstance(record["price"], float) or record["qty"] < 1


def test_velo_demo_mixes_in_a_few_bad_records(db):
    run("velo_demo", "--records", "1000")

    records = [r for b in Batch.objects.all() for r in b.records]
    assert 10 <= sum(map(is_bad, records)) <= 80


def test_velo_demo_gives_the_fail_batch_job_one_bad_record_in_its_first_batch(db):
    run("velo_demo", "--records", "1000")

    first, second = Batch.objects.filter(job__name="ledger").order_by("pk")
    assert sum(map(is_bad, first.records)) == 1
    assert sum(map(is_bad, second.records)) == 0


def test_velo_demo_a_second_run_keeps_the_jobs_and_adds_traffic(db):
    run("velo_demo", "--records", "300")
    Job.objects.filter(name="payments").update(dlq_max_size=10)  # edited in the admin
    job_ids = sorted(Job.objects.values_list("pk", flat=True))

    out, _ = run("velo_demo", "--records", "300")

    assert sorted(Job.objects.values_list("pk", flat=True)) == job_ids
    assert Job.objects.get(name="payments").dlq_max_size == 10
    assert "Demo jobs exist" in out
    assert sum(b.record_count for b in Batch.objects.all()) == 600


def test_velo_demo_records_are_the_same_for_the_same_seed(db):
    run("velo_demo", "--records", "200", "--seed", "7")
    first = sorted(json.dumps(b.records, sort_keys=True) for b in Batch.objects.all())
    Batch.objects.all().delete()

    run("velo_demo", "--records", "200", "--seed", "7")

    assert sorted(json.dumps(b.records, sort_keys=True) for b in Batch.objects.all()) == first


def test_feeding_forever_submits_small_batches_until_interrupted(db):
    demo.ensure_demo_jobs()
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.feed_forever(demo.Feed(random.Random(1)), interval=2.0, sleep=sleep)

    assert naps == [2.0, 2.0, 2.0]
    assert [10 <= b.record_count <= 50 for b in Batch.objects.all()] == [True] * 3


# ensure_superuser


def test_ensure_superuser_prints_a_generated_password_once(db):
    first, _ = run("ensure_superuser")
    second, _ = run("ensure_superuser")

    password = next(
        line.split(":", 1)[1].strip()
        for line in first.splitlines()
        if line.strip().startswith("password:")
    )
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password(password)
    assert len(password) >= 16
    assert "username: admin" in first
    assert password not in second
    assert "exists" in second
    assert "python manage.py changepassword admin" in second
    assert get_user_model().objects.count() == 1


def test_ensure_superuser_takes_another_username(db):
    out, _ = run("ensure_superuser", "--username", "ops")

    assert "username: ops" in out
    assert get_user_model().objects.get(username="ops").is_superuser


def test_ensure_superuser_does_not_promote_an_existing_ordinary_user(db):
    get_user_model().objects.create_user("admin", password="x")

    with pytest.raises(CommandError, match="exists but is not a superuser"):
        run("ensure_superuser")

    assert not get_user_model().objects.get(username="admin").is_superuser
