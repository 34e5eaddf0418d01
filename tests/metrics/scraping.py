"""Reading an exposition as a scraper does, and promtool's opinion of it."""

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families


def parse(text):
    """The families a scraper sees, by name."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def velo_samples(families):
    """{(sample name, sorted label pairs): value} for every velo_* sample."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for name, family in families.items()
        if name.startswith("velo_")
        for sample in family.samples
    }


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)",
)


def promtool_problems(text):
    """`promtool check metrics` on an exposition: its complaints, one a line."""
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 0 or lines, f"promtool failed silently ({result.returncode})"
    # No complaint is accepted, django-prometheus' names included: promtool
    # 2.42 (Debian 12) finds none in the whole exposition.
    return [line for line in lines if line.strip()]
