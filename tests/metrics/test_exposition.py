"""/metrics as a scraper sees it (SPEC §8): exact values after a known workload, and the bounds."""

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import CollectorRegistry

from dlq import triage
from dlq.ingest import submit_batch
from dlq.metrics import VeloCollector
from dlq.models import BatchDurationBucket, DLQEntry, Job, RequeueRun
from dlq.requeue import entries as reprocess

from .expected import BOUNDS, SPEC_FAMILIES, expected_workload_samples, histogram, ts
from .scraping import needs_promtool, promtool_problems, velo_samples
from .workload import OPS_SHELL, build_workload, run_once

pytestmark = pytest.mark.django_db


def error_series(families):
    """{(job_name, message): value} of velo_error_message."""
    return {
        (s.labels["job_name"], s.labels["message"]): s.value
        for s in families["velo_error_message"].samples
    }


def gauge(families, name):
    (sample,) = families[name].samples
    return sample.value


def feed_job(name="feed", **fields):
    """A job whose records fail with the message they carry (metrics.tick)."""
    return Job.objects.create(
        name=name, processor="metrics.tick", failure_strategy="send_to_dlq", **fields
    )


def fail_with(job, *messages):
    batch, _ = submit_batch(job, [{"error": message} for message in messages])
    return run_once(batch)


# --- the known workload -----------------------------------------------------------------


def test_every_velo_family_holds_exactly_the_values_of_a_known_workload(clock, deployment, scrape):
    build_workload(clock)
    _, families = scrape()
    assert velo_samples(families) == expected_workload_samples()


def test_every_velo_family_has_the_spec_name_type_labels_and_a_help_text(clock, deployment, scrape):
    build_workload(clock)
    _, families = scrape()
    velo = {name: family for name, family in families.items() if name.startswith("velo_")}
    assert {name: family.type for name, family in velo.items()} == {
        name: kind for name, (kind, _) in SPEC_FAMILIES.items()
    }
    for name, family in velo.items():
        assert family.documentation.strip(), f"{name} has no HELP"
        labels = set(SPEC_FAMILIES[name][1])
        if family.type == "histogram":
            labels_of = {sample.name: set(sample.labels) - {"le"} for sample in family.samples}
            assert all(found == labels for found in labels_of.values()), name
        else:
            assert {frozenset(sample.labels) for sample in family.samples} == {frozenset(labels)}, (
                name
            )
        # A counter's samples carry _total; nothing else does.
        for sample in family.samples:
            assert sample.name.endswith("_total") == (family.type == "counter"), sample.name


def test_the_histogram_is_cumulative_ends_in_inf_and_counts_the_finished_batches(
    clock, deployment, scrape
):
    build_workload(clock)
    _, families = scrape()
    samples = families["velo_batch_duration_seconds"].samples
    finished = {}
    for sample in families["velo_batches"].samples:
        job = sample.labels["job_name"]
        finished[job] = finished.get(job, 0) + sample.value
    for job, count in finished.items():
        buckets = [
            (s.labels["le"], s.value)
            for s in samples
            if s.name.endswith("_bucket") and s.labels["job_name"] == job
        ]
        assert [le for le, _ in buckets][-1] == "+Inf"
        assert [float(le) for le, _ in buckets] == list(BOUNDS)
        values = [value for _, value in buckets]
        assert values == sorted(values), f"{job}: buckets not cumulative"
        (total,) = [
            s.value
            for s in samples
            if s.name == "velo_batch_duration_seconds_count" and s.labels["job_name"] == job
        ]
        assert total == values[-1] == count
        assert [
            s
            for s in samples
            if s.name == "velo_batch_duration_seconds_sum" and s.labels["job_name"] == job
        ]


def test_a_batch_slower_than_the_last_bound_lands_in_the_inf_bucket(clock, scrape):
    job = feed_job(config={"seconds": 1000})
    batch, _ = submit_batch(job, [{"n": 1}])
    assert run_once(batch).status == "succeeded"
    _, families = scrape()
    found = {
        key: value
        for key, value in velo_samples(families).items()
        if key[0].startswith("velo_batch_duration_seconds")
    }
    assert found == histogram("feed", [1000.0], 1000.0)


def test_a_stored_bucket_off_the_current_bounds_still_counts_in_the_next_bound_up(scrape):
    job = feed_job()
    BatchDurationBucket.objects.filter(job=job).delete()
    BatchDurationBucket.objects.create(job=job, le=0.07, count=2)  # a bound of an older release
    BatchDurationBucket.objects.create(job=job, le=math.inf, count=1)
    _, families = scrape()
    found = {
        key: value
        for key, value in velo_samples(families).items()
        if key[0].startswith("velo_batch_duration_seconds")
    }
    assert found == histogram("feed", [0.07, 0.07, math.inf], 0.0)  # no batch counted a sum


def test_django_prometheus_families_are_served_beside_velos(scrape):
    scrape()  # the first request is counted once its response has gone
    _, families = scrape()
    assert families["django_http_requests_before_middlewares"].type == "counter"
    by_method = families["django_http_requests_total_by_method"]
    # Process-wide counters: earlier tests' requests are in them too; the scrapes are GETs.
    get = [
        s for s in by_method.samples if s.name.endswith("_total") and s.labels["method"] == "GET"
    ]
    assert get and get[0].value >= 2
    assert "process_start_time_seconds" in families
    assert "python_info" in families


# --- oldest entry, capacity ---------------------------------------------------------------


def test_the_oldest_pending_entry_timestamp_follows_the_dlq(clock, scrape):
    job = feed_job()
    key = ("velo_dlq_oldest_entry_timestamp_seconds", (("job_name", "feed"),))
    _, families = scrape()
    assert key not in velo_samples(families)  # absent while the DLQ is empty

    clock.at(100)
    first = fail_with(job, "first failure")
    clock.at(200)
    fail_with(job, "second failure")
    _, families = scrape()
    assert velo_samples(families)[key] == ts(100)

    triage.discard(DLQEntry.objects.filter(batch=first), actor=OPS_SHELL)
    _, families = scrape()
    assert velo_samples(families)[key] == ts(200)

    triage.discard(DLQEntry.objects.filter(job=job), actor=OPS_SHELL)
    _, families = scrape()
    samples = velo_samples(families)
    assert key not in samples
    assert samples[("velo_dlq_size", (("job_name", "feed"),))] == 0
    assert samples[("velo_dlq_entries_discarded_total", (("job_name", "feed"),))] == 2
    assert samples[("velo_dlq_last_entry_timestamp_seconds", (("job_name", "feed"),))] == ts(200)


def test_max_size_is_absent_for_an_unbounded_dlq_only(scrape):
    feed_job("bounded", dlq_max_size=50)
    feed_job("unbounded", dlq_max_size=None)
    _, families = scrape()
    assert {s.labels["job_name"]: s.value for s in families["velo_dlq_max_size"].samples} == {
        "bounded": 50
    }
    assert {
        s.labels["job_name"]: s.value for s in families["velo_dlq_capacity_percent"].samples
    } == {"bounded": 0.0, "unbounded": 0.0}


def job_values(families, job, *names):
    samples = velo_samples(families)
    return tuple(samples.get((name, (("job_name", job),))) for name in names)


CAPACITY = (
    "velo_dlq_size",
    "velo_dlq_max_size",
    "velo_dlq_capacity_percent",
    "velo_dlq_at_capacity",
    "velo_dlq_health_status",
    "velo_dlq_entries_added_total",
    "velo_dlq_entries_rejected_total",
    "velo_dlq_capacity_exceeded_total",
    "velo_batches_in_flight",
    "velo_batch_duration_seconds_count",
)


def test_backpressure_holds_the_batch_in_flight_and_rejects_nothing(clock, scrape):
    job = feed_job(dlq_max_size=1, dlq_full_policy="backpressure")
    batch = fail_with(job, "first refusal", "second refusal")
    assert batch.status == "retrying"
    _, families = scrape()
    assert job_values(families, "feed", *CAPACITY) == (1, 1, 100.0, 1, 3, 1, 0, 0, 1, 0)

    # An operator discards the stored entry: room for the held one.
    triage.discard(DLQEntry.objects.filter(job=job), actor=OPS_SHELL)
    clock.at(30)
    assert run_once(batch).status == "partial"
    _, families = scrape()
    assert job_values(families, "feed", *CAPACITY) == (1, 1, 100.0, 1, 3, 2, 0, 0, 0, 1)
    samples = velo_samples(families)
    assert samples[("velo_batches_total", (("job_name", "feed"), ("status", "partial")))] == 1
    assert samples[("velo_batch_duration_seconds_sum", (("job_name", "feed"),))] == 30.0
    assert samples[("velo_dlq_oldest_entry_timestamp_seconds", (("job_name", "feed"),))] == ts(30)


def test_a_requeue_that_fails_again_never_pushes_the_dlq_over_capacity(clock, scrape):
    job = feed_job(dlq_max_size=1)
    fail_with(job, "first refusal")
    entry = DLQEntry.objects.get(job=job)
    run = RequeueRun.objects.create(
        created_by="ops", entry_ids=[entry.pk], status=RequeueRun.Status.RUNNING
    )
    claimed = reprocess.claim([entry.pk], run)  # a worker starts re-running it ...
    clock.at(5)
    fail_with(job, "second refusal")  # ... while a new failure arrives
    reprocess.reprocess(claimed, run, started_by="ops")  # the cause is not fixed
    _, families = scrape()
    size, max_size, percent, *_ = job_values(families, "feed", *CAPACITY)
    assert size <= max_size, f"{size} pending entries in a DLQ of {max_size}"
    assert percent <= 100.0


# --- the recent-errors buffer -------------------------------------------------------------

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


def test_the_error_series_are_the_ten_most_recent_groups_and_a_group_that_leaves_goes(
    clock, scrape
):
    job = feed_job()
    for second, word in enumerate(WORDS[:10]):
        clock.at(second)
        fail_with(job, f"Upstream {word} refused")
    _, families = scrape()
    assert error_series(families) == {("feed", f"Upstream {w} refused"): 1 for w in WORDS[:10]}
    assert gauge(families, "velo_buffered_error_messages") == 10

    clock.at(10)  # the 11th group pushes alpha, the least recently seen, out
    fail_with(job, f"Upstream {WORDS[10]} refused")
    _, families = scrape()
    assert error_series(families) == {("feed", f"Upstream {w} refused"): 1 for w in WORDS[1:11]}
    assert gauge(families, "velo_buffered_error_messages") == 10
    assert gauge(families, "velo_unique_error_types") == 11
    assert gauge(families, "velo_error_messages") == 11

    clock.at(11)  # alpha seen again comes back with its whole count; bravo goes
    fail_with(job, "Upstream alpha refused")
    _, families = scrape()
    series = error_series(families)
    assert len(series) == 10
    assert series[("feed", "Upstream alpha refused")] == 2
    assert ("feed", "Upstream bravo refused") not in series
    assert gauge(families, "velo_error_messages") == 12


def test_message_labels_are_templates_cut_at_200_characters_without_duplicate_series(clock, scrape):
    job = feed_job()
    long = "x" * 300
    fail_with(job, f"Timeout after 3001 ms on {long}", f"Timeout after 2950 ms on {long}")
    clock.at(1)
    # Two groups alike in their first 200 characters would expose the same label
    # set twice, which Prometheus refuses: they share one series.
    fail_with(job, "y" * 200 + " one")
    clock.at(2)
    fail_with(job, "y" * 200 + " two")
    _, families = scrape()
    series = error_series(families)
    assert series == {
        ("feed", ("Timeout after <*> on " + long)[:200]): 2,
        ("feed", "y" * 200): 2,
    }
    assert all(len(message) <= 200 for _, message in series)
    assert gauge(families, "velo_buffered_error_messages") == 3
    assert gauge(families, "velo_unique_error_types") == 3


def test_quotes_and_backslashes_in_a_message_are_escaped_and_parse_back(clock, scrape):
    # A template folds blanks (a newline too), so only quotes and backslashes reach a label.
    message = 'Bad "quote" in a\\b, not \\n a newline'
    fail_with(feed_job(), message)
    text, families = scrape()
    escaped = 'Bad \\"quote\\" in a\\\\b, not \\\\n a newline'
    assert f'velo_error_message{{job_name="feed",message="{escaped}"}} 1.0' in text.splitlines()
    assert error_series(families) == {("feed", message): 1}


# --- cost ---------------------------------------------------------------------------------


def test_registering_the_collector_reads_no_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        CollectorRegistry().register(VeloCollector())
        # The default registry's kind collects at registration when there is no describe().
        CollectorRegistry(auto_describe=True).register(VeloCollector())


def scrape_queries(client):
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/metrics").status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def test_a_scrape_costs_the_same_queries_for_10_or_300_entries_and_never_counts_them(
    client, clock, django_assert_max_num_queries
):
    small, large = feed_job("small"), feed_job("large")
    fail_with(small, *["Timeout after 10 ms"] * 10)
    fail_with(large, *["Timeout after 10 ms"] * 10)
    with_ten = scrape_queries(client)

    for _ in range(29):
        fail_with(large, *["Timeout after 20 ms"] * 10)
    with_three_hundred = scrape_queries(client)
    with django_assert_max_num_queries(len(with_ten)):
        client.get("/metrics")
    assert len(with_three_hundred) == len(with_ten)

    for sql in with_ten + with_three_hundred:
        lowered = sql.lower()
        assert "erroroccurrence" not in lowered, sql
        assert not ("dlq_dlqentry" in lowered and "count(" in lowered), sql
        assert not ("dlq_dlqentry" in lowered and "group by" in lowered), sql

    # Nor does it grow with the jobs: their values come in one query.
    for n in range(5):
        feed_job(f"more-{n}")
    assert len(scrape_queries(client)) == len(with_ten)


# --- promtool -----------------------------------------------------------------------------


@needs_promtool
def test_promtool_finds_no_problem_in_the_exposition_of_a_populated_velo(clock, deployment, scrape):
    build_workload(clock)
    scrape()
    text, families = scrape()
    assert any(name.startswith("django_") for name in families)
    assert promtool_problems(text) == []


def test_the_failure_rate_is_zero_before_anything_ran(scrape):
    feed_job()
    _, families = scrape()
    (sample,) = families["velo_failure_rate_percent"].samples
    assert sample.value == 0.0
    assert not math.isnan(sample.value)


def test_record_timeouts_are_counted_per_job_from_the_database(scrape, make_job):
    job = make_job("hangs", processor="test.hangs", record_timeout=0.2)
    make_job("calm", processor="test.hangs")
    batch, _ = submit_batch(job, [{}, {"hang": "sleep"}, {"hang": "regex"}])
    assert run_once(batch).status == "partial"
    _, families = scrape()
    samples = velo_samples(families)
    assert samples[("velo_record_timeouts_total", (("job_name", "hangs"),))] == 2
    assert samples[("velo_record_timeouts_total", (("job_name", "calm"),))] == 0
    assert samples[("velo_records_failed_total", (("job_name", "hangs"),))] == 2
