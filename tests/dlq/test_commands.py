"""`sync_jobs`, `dlq_health` and `ensure_superuser`, run as an operator runs them."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError

from dlq.models import Job, JobCounters
from tests.commands import run
from tests.contract import HEALTH_JSON_KEYS

pytestmark = pytest.mark.django_db


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


def test_dlq_health_json_has_exactly_the_spec_keys_and_the_status(make_job):
    job = make_job("orders", dlq_max_size=100)
    make_job("unbounded", dlq_max_size=None)
    JobCounters.objects.filter(job=job).update(dlq_pending=95, dlq_added=120, dlq_rejected=3)

    out, _ = run("dlq_health", "--json")

    orders, unbounded = json.loads(out)
    assert tuple(orders) == HEALTH_JSON_KEYS
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


def test_ensure_superuser_keeps_the_password_for_its_owner_and_shows_the_login_again(db, tmp_path):
    kept = tmp_path / "var" / "admin-password"
    first, _ = run("ensure_superuser", "--password-file", str(kept))
    password = kept.read_text().strip()
    assert f"password: {password}" in first
    assert kept.stat().st_mode & 0o777 == 0o600

    again, _ = run("ensure_superuser", "--password-file", str(kept))
    assert f"password: {password}" in again  # the set-up's last lines say how to log in
    assert "Log in to Velo" in again

    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-the-operator")
    admin.save()
    after_change, _ = run("ensure_superuser", "--password-file", str(kept))
    assert password not in after_change  # a stale file is not shown as the login
    assert "changepassword admin" in after_change
