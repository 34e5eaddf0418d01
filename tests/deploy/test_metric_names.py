"""Every metric the alert rules and the dashboard query is one a populated Velo exports."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .promql import (
    dashboard_expressions,
    grafana_query_names,
    metric_names,
    rule_blocks,
    rule_expressions,
    variable_queries,
)

# Series Prometheus adds to every target itself.
ADDED_BY_PROMETHEUS = {"up"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "histogram_quantile(0.95, sum by (le, job_name) "
            '(rate(velo_batch_duration_seconds_bucket{job_name=~"$job_name"}[5m])))',
            {"velo_batch_duration_seconds_bucket"},
        ),
        (
            "100 * max by (job_name) (rate(a_total[5m]))\n  / max by (job_name) "
            "(rate(b_total[$__rate_interval])) > 5",
            {"a_total", "b_total"},
        ),
        ("time() - min by (job_name) (x_seconds) > 24 * 3600", {"x_seconds"}),
        (
            "max by (job_name) (a) > 0 unless on (job_name) increase(b[15m] offset 1h) > 0",
            {"a", "b"},
        ),
        ('up{job="velo"} == 0', {"up"}),
        ('absent(up{job="velo", instance=~"web.*"})', {"up"}),
        ("sum without (instance) (a) / ignoring (status) group_left b", {"a", "b"}),
        ("max(delta(g[15m:1m])) >= 1e3 and c == bool 2 or vector(0)", {"g", "c"}),
        ("topk(10, velo_error_message)", {"velo_error_message"}),
        ('count(a{message="rate(fake_metric[5m]) by (x)"})', {"a"}),
    ],
)
def test_metric_names_are_read_from_promql(expr, names):
    assert metric_names(expr) == names


def test_metric_names_refuses_a_selector_it_cannot_read():
    with pytest.raises(ValueError, match="__name__"):
        metric_names('{__name__="velo_dlq_size"}')


def test_grafana_variable_queries_are_read():
    assert grafana_query_names("label_values(velo_dlq_size, job_name)") == {"velo_dlq_size"}
    assert grafana_query_names('label_values(a{b="c"}, job_name)') == {"a"}
    assert grafana_query_names("label_values(job_name)") == set()


def test_one_expression_is_read_for_every_rule():
    expressions, blocks = rule_expressions(), rule_blocks()
    assert set(expressions) == set(blocks)
    assert len(expressions) == 11
    assert all(expr.strip() for expr in expressions.values())
    assert "unless on (job_name)" in expressions["VeloBatchesStuck"]  # a block scalar, whole


def used_metrics():
    """{metric name: [where it is used]} over the rules and the dashboard."""
    used = {}
    sources = [(f"alert {name}", expr) for name, expr in rule_expressions().items()]
    sources += dashboard_expressions()
    for where, expr in sources:
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    for variable, query in variable_queries():
        for name in grafana_query_names(query):
            used.setdefault(name, []).append(f"variable ${variable}")
    return used


def exported_sample_names(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.django_db
def test_rules_and_dashboard_use_only_metrics_a_populated_velo_exports(populated, client, settings):
    settings.VELO_METRICS_TOKEN = ""
    exported = exported_sample_names(client) | ADDED_BY_PROMETHEUS
    used = used_metrics()
    missing = {name: where for name, where in used.items() if name not in exported}
    assert not missing, f"queried but not exported by Velo: {missing}"
    # The check is not vacuous: it saw the families the kit is about.
    assert {
        "up",
        "velo_records_failed_total",
        "velo_dlq_health_status",
        "velo_dlq_oldest_entry_timestamp_seconds",
        "velo_batch_duration_seconds_bucket",
        "velo_error_message",
        "velo_unique_error_types",
    } <= set(used)
    assert len(used) >= 20


@pytest.mark.django_db
def test_the_populated_velo_has_the_data_the_dashboard_shows(populated, client, settings):
    """The fixture really fills the families whose samples are optional."""
    settings.VELO_METRICS_TOKEN = ""
    text = client.get("/metrics").content.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("velo_dlq_entries_added_total", (("job_name", "orders"),))] == 4
    assert samples[("velo_dlq_entries_rejected_total", (("job_name", "trades"),))] == 1
    assert any(name == "velo_dlq_oldest_entry_timestamp_seconds" for name, _ in samples)
    assert any(name == "velo_error_message" for name, _ in samples)
