"""`regroup` and `sync_jobs`' `[[jobs.grouping]]` tables: preview, then apply, from the shell."""

import json

import pytest
from django.core.management import CommandError

from dlq.models import Job, RegroupRun
from errors.models import ErrorGroup
from tests.commands import run
from tests.dlq.factories import attacks, auth_job

from .test_runs import RULES

pytestmark = pytest.mark.django_db

JOBS_TOML = """
[[jobs]]
name = "auth"
processor = "test.fails_with"
[[jobs.grouping]]
variables = ['for (\\S+) from']
"""


def test_a_dry_run_says_what_would_merge_and_changes_nothing(tmp_path):
    job = auth_job()
    attacks(job)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    out, _ = run("regroup", "--job", "auth", "--rules", str(rules), "--dry-run")
    assert "Would regroup job auth" in out
    assert "5 groups → 2" in out
    assert "merge into #" in out
    for user in ("root", "git", "ftp", "oracle"):  # each group that merges, with its template
        assert f"Failed password for {user} from <*> port <*>" in out
    assert ErrorGroup.objects.count() == 5
    assert Job.objects.get(name="auth").grouping == []


def test_applying_from_a_toml_file_moves_the_history_and_puts_the_rules_in_force(tmp_path):
    job = auth_job()
    attacks(job)
    rules = tmp_path / "rules.toml"
    rules.write_text("[[grouping]]\nvariables = ['for (\\S+) from']\n")
    out, _ = run("regroup", "--job", "auth", "--rules", str(rules), "--verbosity", "0")
    assert "Regrouped job auth" in out
    assert ErrorGroup.objects.count() == 2
    assert Job.objects.get(name="auth").grouping == RULES
    assert RegroupRun.objects.get().status == "finished"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--job", "nope"], "no job named 'nope'"),
        (["--job", "auth", "--rules", "/no/such/file.json"], "cannot read"),
    ],
)
def test_bad_arguments_are_refused(args, words):
    auth_job()
    with pytest.raises(CommandError, match=words):
        run("regroup", *args)


def test_a_rule_that_matches_nothing_is_refused(tmp_path):
    attacks(auth_job())
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"variables": ["nothing like this"]}]))
    with pytest.raises(CommandError, match="matches none of the 5 error groups"):
        run("regroup", "--job", "auth", "--rules", str(rules))
    assert not RegroupRun.objects.exists()


def test_sync_jobs_previews_then_applies_new_grouping_rules(tmp_path):
    attacks(auth_job())
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(JOBS_TOML)
    out, _ = run("sync_jobs", str(jobs), "--dry-run")
    assert "Would regroup job auth" in out and "5 groups → 2" in out
    assert ErrorGroup.objects.count() == 5
    out, _ = run("sync_jobs", str(jobs))
    assert "Regrouped job auth" in out
    assert ErrorGroup.objects.count() == 2
    assert Job.objects.get(name="auth").grouping == RULES
    out, _ = run("sync_jobs", str(jobs))  # in force already: nothing to regroup
    assert "Regrouped" not in out


def test_sync_jobs_refuses_bad_rules_whole_and_gives_a_new_job_its_rules_at_once(tmp_path):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(JOBS_TOML.replace("for (\\S+) from", "(unclosed"))
    with pytest.raises(CommandError, match='job "auth", field "grouping": rule 1'):
        run("sync_jobs", str(jobs))
    assert not Job.objects.exists()
    jobs.write_text(JOBS_TOML)
    run("sync_jobs", str(jobs))
    assert Job.objects.get(name="auth").grouping == RULES
    assert not RegroupRun.objects.exists()  # no history to move
