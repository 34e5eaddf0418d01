"""The processor registry: how a job finds its processor, and how a processor checks its config."""

import pytest
from django.core.exceptions import ValidationError

from dlq.models import Job
from dlq.processors import ProcessorContext, processor, registry, resolve


def _needs_a_table(config):
    if not isinstance(config.get("table"), str):
        raise ValueError('needs config["table"], a table name')


@processor("test.needs_table", transactional=False, check_config=_needs_a_table)
def needs_table(record, ctx):
    """A processor that checks its own config when its job is saved."""


def test_the_built_in_and_demo_processors_are_registered_at_start():
    assert {"json_schema", "demo.trades", "demo.flaky", "demo.slow"} <= set(registry)
    assert not registry["json_schema"].transactional


def test_a_processors_own_config_check_refuses_its_job(db):
    with pytest.raises(ValidationError) as refused:
        Job(name="loader", processor="test.needs_table", config={}).full_clean()
    assert refused.value.message_dict == {"config": ['needs config["table"], a table name']}
    Job(name="loader", processor="test.needs_table", config={"table": "t"}).full_clean()


def test_a_processor_without_a_check_takes_any_config(db):
    Job(name="trades", processor="demo.trades", config={"anything": [1, 2]}).full_clean()


def test_an_unknown_processor_is_refused_when_the_job_is_saved(db):
    with pytest.raises(ValidationError) as refused:
        Job(name="x", processor="no.such").full_clean()
    assert "Unknown processor 'no.such'" in refused.value.message_dict["processor"][0]


def test_resolving_a_missing_processor_gives_one_that_fails_each_record():
    missing = resolve("no.such")
    assert not missing.transactional
    ctx = ProcessorContext(job=None, config={}, batch_id=1, attempt=1, logger=None)
    with pytest.raises(LookupError, match=r"unknown processor 'no\.such'"):
        missing.func({"a": 1}, ctx)


def test_a_configured_processor_replaces_a_demo_one_whichever_app_starts_first(monkeypatch):
    from django.apps import apps

    from demo.apps import DemoConfig

    def mine(record, ctx):
        """A deployment's own demo.trades."""

    monkeypatch.setitem(registry, "demo.trades", registry["demo.trades"])
    processor("demo.trades")(mine)  # as a VELO_PROCESSORS module does
    DemoConfig.ready(apps.get_app_config("demo"))  # the demo app starting after it
    assert registry["demo.trades"].func is mine
