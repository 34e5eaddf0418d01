"""promtool (Debian's prometheus package) accepts deploy/'s rules and config, and the rules fire."""

import subprocess

from .conftest import need
from .promql import ALERT_TESTS, ALERTS, PROMETHEUS_CONFIG


def promtool(*args):
    result = subprocess.run(
        [need("promtool"), *map(str, args)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(map(str, args))}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules():
    assert "SUCCESS: 11 rules found" in promtool("check", "rules", ALERTS)


def test_promtool_accepts_the_prometheus_config_and_the_rule_file_it_loads():
    output = promtool("check", "config", PROMETHEUS_CONFIG)
    assert "SUCCESS: 1 rule files found" in output
    assert str(ALERTS.relative_to(PROMETHEUS_CONFIG.parent)) in output


def test_alert_rules_fire_as_their_unit_tests_expect():
    """deploy/alerts.test.yml: each rule, fed synthetic series, fires (or not) with its
    labels and rendered annotations."""
    assert "SUCCESS" in promtool("test", "rules", ALERT_TESTS)
