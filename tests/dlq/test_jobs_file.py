"""Jobs as code (SPEC §6): applied by name, idempotently; a bad file changes nothing."""

import textwrap

import pytest
from django.utils import timezone

from dlq import jobs_file
from dlq.models import Job

pytestmark = pytest.mark.django_db

SPEC_EXAMPLE = """
[[jobs]]
name = "orders"
processor = "json_schema"
failure_strategy = "send_to_dlq"
dlq_max_size = 1000
dlq_full_policy = "reject"
max_retries = 3
retry_initial_delay = 0.5
retry_multiplier = 2.0
retry_max_delay = 10
[jobs.config.schema]
type = "object"
required = ["symbol", "price"]
properties = { symbol = { type = "string" }, price = { type = "number" } }
"""


@pytest.fixture
def write(tmp_path):
    def write(text, name="jobs.toml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def sync(path, **kwargs):
    return jobs_file.apply(jobs_file.load(path), **kwargs)


def refusal(path):
    with pytest.raises(jobs_file.JobsFileError) as caught:
        sync(path)
    return caught.value


def test_the_spec_example_creates_the_job_it_declares(write):
    [result] = sync(write(SPEC_EXAMPLE))

    assert result.action == "created"
    job = Job.objects.get(name="orders")
    assert job.processor == "json_schema"
    assert job.dlq_max_size == 1000
    assert job.retry_initial_delay == 0.5
    assert job.retry_max_delay == 10.0
    assert job.config["schema"]["required"] == ["symbol", "price"]
    assert job.counters.dlq_pending == 0  # created like any job, with its counters row


def test_a_key_left_out_gets_the_field_default_on_create(write):
    sync(write('[[jobs]]\nname = "trades"\nprocessor = "demo.trades"\n'))

    job = Job.objects.get(name="trades")
    assert job.failure_strategy == "send_to_dlq"
    assert job.dlq_max_size == 100_000
    assert job.max_retries == 3
    assert job.retry_initial_delay == 1.0
    assert job.dlq_enabled is True
    assert job.config == {}


def test_applying_the_same_file_twice_changes_nothing_the_second_time(write):
    path = write(SPEC_EXAMPLE)
    sync(path)
    updated_at = Job.objects.get(name="orders").updated_at

    [result] = sync(path)

    assert result.action == "unchanged"
    assert result.changes == {}
    assert Job.objects.get(name="orders").updated_at == updated_at
    assert Job.objects.count() == 1


def test_an_update_sets_the_named_keys_and_leaves_the_others_as_edited_in_the_admin(write):
    sync(write(SPEC_EXAMPLE))
    Job.objects.filter(name="orders").update(enabled=False, retry_multiplier=3.0)

    [result] = sync(
        write('[[jobs]]\nname = "orders"\nprocessor = "json_schema"\nmax_retries = 5\n')
    )

    assert result.action == "updated"
    assert result.changes == {"max_retries": (3, 5)}
    job = Job.objects.get(name="orders")
    assert job.max_retries == 5
    assert job.enabled is False  # an operator's edit survives a sync that does not name it
    assert job.retry_multiplier == 3.0
    assert job.dlq_max_size == 1000  # left out of the new file: unchanged, not reset


def test_dlq_max_size_zero_means_unbounded(write):
    sync(write('[[jobs]]\nname = "firehose"\nprocessor = "demo.trades"\ndlq_max_size = 0\n'))

    assert Job.objects.get(name="firehose").dlq_max_size is None


def test_an_unknown_field_refuses_the_whole_file_naming_job_and_field(write):
    path = write(
        """
        [[jobs]]
        name = "good"
        processor = "demo.trades"

        [[jobs]]
        name = "typo"
        processor = "demo.trades"
        max_retry = 3
        """
    )

    error = refusal(path)

    assert any('job "typo", field "max_retry": unknown field' in p for p in error.problems)
    assert not Job.objects.exists()  # the good job before it was not written either


def test_an_unknown_processor_is_refused_naming_job_and_field(write):
    error = refusal(write('[[jobs]]\nname = "orders"\nprocessor = "no.such"\n'))

    [problem] = error.problems
    assert problem.startswith('job "orders", field "processor": ')
    assert "no.such" in problem
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ('max_retries = "3"', "max_retries", "expected an integer, got a string"),
        ("max_retries = true", "max_retries", "expected an integer, got a boolean"),
        ("retry_initial_delay = true", "retry_initial_delay", "expected a number"),
        ("retry_max_delay = inf", "retry_max_delay", "expected a finite number"),
        ("dlq_enabled = 1", "dlq_enabled", "expected true or false, got an integer"),
        ('config = "x"', "config", "expected a table, got a string"),
        ("config = { since = 2024-01-01 }", "config", "JSON cannot store"),
        ("dlq_full_policy = 7", "dlq_full_policy", "expected a string, got an integer"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_job_and_field(write, line, field, expected):
    error = refusal(write(f'[[jobs]]\nname = "orders"\nprocessor = "demo.trades"\n{line}\n'))

    prefix = f'job "orders", field "{field}": '
    assert any(p.startswith(prefix) and expected in p for p in error.problems), error.problems
    assert not Job.objects.exists()


def test_a_bad_strategy_value_is_refused_with_the_choices(write):
    error = refusal(
        write('[[jobs]]\nname = "orders"\nprocessor = "demo.trades"\nfailure_strategy = "retry"\n')
    )

    [problem] = error.problems
    assert problem.startswith('job "orders", field "failure_strategy": ')
    assert "retry_with_backoff" in problem


def test_model_validation_refuses_out_of_range_values(write):
    error = refusal(
        write(
            '[[jobs]]\nname = "orders"\nprocessor = "demo.trades"\n'
            "retry_multiplier = 0.5\nmax_retries = -1\n"
        )
    )

    fields = sorted(p.split('field "')[1].split('"')[0] for p in error.problems)
    assert fields == ["max_retries", "retry_multiplier"]


def test_a_bad_file_leaves_existing_jobs_untouched(write):
    sync(write(SPEC_EXAMPLE))

    refusal(
        write(
            '[[jobs]]\nname = "orders"\nprocessor = "json_schema"\nmax_retries = 9\n'
            '[[jobs]]\nname = "other"\nprocessor = "nope"\n'
        )
    )

    assert Job.objects.get(name="orders").max_retries == 3
    assert not Job.objects.filter(name="other").exists()


def test_a_job_without_a_name_or_declared_twice_is_refused(write):
    error = refusal(
        write(
            '[[jobs]]\nprocessor = "demo.trades"\n'
            '[[jobs]]\nname = "twice"\nprocessor = "demo.trades"\n'
            '[[jobs]]\nname = "twice"\nprocessor = "demo.trades"\n'
        )
    )

    assert error.problems == [
        'job #1: the field "name" is required',
        'job "twice": declared more than once in the file',
    ]


def test_a_new_job_without_a_processor_is_refused(write):
    error = refusal(write('[[jobs]]\nname = "orders"\n'))

    assert error.problems[0].startswith('job "orders", field "processor": ')


def test_a_name_that_is_not_a_slug_is_refused(write):
    error = refusal(write('[[jobs]]\nname = "my orders"\nprocessor = "demo.trades"\n'))

    assert error.problems[0].startswith('job "my orders", field "name": ')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[jobs]\n", "not valid TOML"),
        ('[job]\nname = "x"\n', "unknown top-level key(s) job"),
        ("jobs = 3\n", "'jobs' must be an array of tables"),
    ],
)
def test_a_file_that_is_not_a_jobs_file_is_refused(write, text, expected):
    error = refusal(write(text))

    assert expected in error.problems[0]


def test_a_dry_run_reports_what_would_change_and_writes_nothing(write):
    results = sync(write(SPEC_EXAMPLE), dry_run=True)

    assert [(r.name, r.action) for r in results] == [("orders", "created")]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "config",
    [{}, {"schema": "not an object"}, {"schema": {"type": "no-such-type"}}],
)
def test_a_json_schema_job_with_a_broken_schema_is_refused(db, config):
    from django.core.exceptions import ValidationError

    from dlq.models import Job

    with pytest.raises(ValidationError) as refused:
        Job(name="bad-schema", processor="json_schema", config=config).full_clean()
    assert "config" in refused.value.message_dict


def with_limits(record, batch):
    return SPEC_EXAMPLE.replace(
        "[jobs.config.schema]",
        f"record_timeout = {record}\nbatch_timeout = {batch}\n[jobs.config.schema]",
    )


def test_time_limits_are_declared_in_the_file_and_checked(write):
    (result,) = sync(write(with_limits(2, 20)))
    assert result.action == "created"
    job = Job.objects.get(name="orders")
    assert (job.record_timeout, job.batch_timeout) == (2.0, 20.0)
    problems = refusal(write(with_limits(0, 900))).problems
    assert any('job "orders", field "record_timeout"' in p for p in problems), problems
    assert any(
        'job "orders", field "batch_timeout": Must be below the batch lease' in p for p in problems
    ), problems
    problems = refusal(write(with_limits(60, 30))).problems
    assert problems == [
        'job "orders", field "record_timeout": Must not exceed batch_timeout (30 s); got 60 s.'
    ]


def test_a_schema_pattern_re2_cannot_run_is_refused_naming_it(write):
    text = SPEC_EXAMPLE.replace(
        'symbol = { type = "string" }', "symbol = { type = \"string\", pattern = '(?<=x)y' }"
    )
    problems = refusal(write(text)).problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        'job "orders", field "config": config[\'schema\'] at properties/symbol'
    )
    assert "'(?<=x)y'" in problems[0] and "RE2" in problems[0]
    assert not Job.objects.exists()


def test_redact_fields_are_declared_in_the_job_config_and_checked(write):
    declared = SPEC_EXAMPLE.replace(
        "[jobs.config.schema]",
        '[jobs.config]\nredact_fields = ["iban", "pin_code"]\n[jobs.config.schema]',
    )
    sync(write(declared))
    assert Job.objects.get(name="orders").config["redact_fields"] == ["iban", "pin_code"]
    problem = refusal(write(declared.replace('["iban", "pin_code"]', '"iban"'), name="bad.toml"))
    assert "redact_fields" in str(problem)


@pytest.mark.parametrize("key", ["paused_at", "release_rate"])
def test_pause_is_not_a_key_of_the_file_and_a_sync_leaves_a_paused_job_paused(write, key):
    sync(write('[[jobs]]\nname = "orders"\nprocessor = "demo.trades"\n'))
    Job.objects.filter(name="orders").update(paused_at=timezone.now())
    error = refusal(write(f'[[jobs]]\nname = "orders"\nprocessor = "demo.trades"\n{key} = 1\n'))
    assert any(f'field "{key}": unknown field' in p for p in error.problems)
    sync(write('[[jobs]]\nname = "orders"\nprocessor = "demo.trades"\nmax_retries = 5\n'))
    assert Job.objects.get(name="orders").paused_at is not None
