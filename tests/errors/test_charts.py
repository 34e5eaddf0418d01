"""The error chart's geometry, read back from its SVG: steps where their buckets are in time,
as high as their counts, hover titles with the bucket's range and counts, a legend to hide
and isolate series, every label escaped."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from errors import charts

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 11, 19, 4, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
BUCKETS = [T0 + n * MINUTE for n in range(60)]
PLOT_W = 960 - charts.LEFT - charts.RIGHT


def render(series, *, buckets=BUCKETS, step=MINUTE, now=None):
    return ET.fromstring(str(charts.step_chart(buckets, step, series, now=now)))


def x_of(moment, buckets=BUCKETS, step=MINUTE):
    """Where a moment must be drawn: in proportion to time across the plot."""
    span = buckets[-1] + step - buckets[0]
    return charts.LEFT + (moment - buckets[0]) / span * PLOT_W


def steps(path):
    """[(x from, x to, count)] of a step path "M x 0 V count H x V count H x … V 0"."""
    moves = re.findall(r"([MVH])([-\d.]+)(?: ([-\d.]+))?", path.get("d"))
    x, y, flat = float(moves[0][1]), 0.0, []
    for command, value, _ in moves[1:]:
        if command == "V":
            y = float(value)
        else:
            flat.append((x, float(value), y))
            x = float(value)
    return flat


def lines(figure):
    return {g.get("data-series"): g for g in figure.iter(f"{SVG}g") if g.get("data-series")}


def columns(figure):
    return {r.get("data-start"): r for r in figure.iter(f"{SVG}rect")}


def test_each_bucket_is_a_flat_step_across_its_own_minute_as_high_as_its_count():
    values = [0] * 60
    values[30], values[31], values[45] = 7, 3, 1  # 04:30, 04:31, 04:45
    figure = render([charts.Series("timeouts", values)])

    flat = steps(lines(figure)["0"].find(f"{SVG}path"))

    assert len(flat) == 60
    for n, (x_from, x_to, count) in enumerate(flat):
        assert x_from == pytest.approx(x_of(BUCKETS[n]), abs=0.01)
        assert x_to == pytest.approx(x_of(BUCKETS[n] + MINUTE), abs=0.01)
        assert count == values[n]
    at_0430 = flat[30]
    assert (at_0430[0], at_0430[1]) == pytest.approx(
        (x_of(T0 + 30 * MINUTE), x_of(T0 + 31 * MINUTE)), abs=0.01
    )


def test_counts_are_drawn_on_a_scale_that_maps_the_top_of_the_axis_to_the_top_of_the_plot():
    figure = render([charts.Series("a", [0] * 59 + [40])])
    plot = next(g for g in figure.iter(f"{SVG}g") if g.get("class") == "velo-plot")
    a, b, c, d, e, f = map(float, re.findall(r"[-\d.]+", plot.get("transform")))
    axis = {
        t.get("data-fraction"): t.text for t in figure.iter(f"{SVG}text") if t.get("data-fraction")
    }

    assert axis == {"0": "0", "0.5": "25", "1": "50"}  # 40 → a top of 50
    assert (a, b, c, e) == (1, 0, 0, 0)
    assert f + d * 0 == charts.TOP + float(plot.get("data-height"))  # count 0 on the baseline
    assert f + d * 50 == pytest.approx(charts.TOP)  # the axis' top at the plot's top


def test_the_current_bucket_is_drawn_only_as_far_as_now():
    now = BUCKETS[-1] + timedelta(seconds=15)
    figure = render([charts.Series("a", [1] * 60)], now=now)

    last = steps(lines(figure)["0"].find(f"{SVG}path"))[-1]
    title = columns(figure)[BUCKETS[-1].isoformat()].find(f"{SVG}title").text

    assert last[1] == pytest.approx(x_of(now), abs=0.01)
    assert "04:59–05:00 UTC: 1 error so far" in title


def test_hovering_a_bucket_gives_its_time_range_total_and_each_series_count():
    noisy = [40] * 60
    quiet = [0] * 60
    quiet[12] = 2
    figure = render([charts.Series("noisy", noisy), charts.Series("quiet", quiet)])

    column = columns(figure)[(T0 + 12 * MINUTE).isoformat()]
    title = column.find(f"{SVG}title").text.split("\n")
    empty_series = columns(figure)[T0.isoformat()].find(f"{SVG}title").text

    assert float(column.get("x")) == pytest.approx(x_of(T0 + 12 * MINUTE), abs=0.01)
    assert float(column.get("width")) == pytest.approx(PLOT_W / 60, abs=0.02)
    assert title == ["Nov 19 04:12–04:13 UTC: 42 errors", "noisy: 40", "quiet: 2"]
    assert "quiet" not in empty_series  # only what failed in that minute is listed
    assert len(columns(figure)) == 60


def test_five_minute_and_daily_buckets_span_their_own_width():
    five = [T0 + n * 5 * MINUTE for n in range(72)]
    figure = render([charts.Series("a", [1] * 72)], buckets=five, step=5 * MINUTE)
    column = columns(figure)[five[10].isoformat()]
    assert float(column.get("width")) == pytest.approx(PLOT_W / 72, abs=0.02)
    assert column.find(f"{SVG}title").text.startswith("Nov 19 04:50–04:55 UTC: 1 error")

    days = [T0.replace(hour=0) + timedelta(days=n) for n in range(8)]
    figure = render([charts.Series("a", [3] * 8)], buckets=days, step=timedelta(days=1))
    title = columns(figure)[days[2].isoformat()].find(f"{SVG}title").text
    assert title.startswith("Nov 21 00:00–Nov 22 00:00 UTC: 3 errors")
    ticks = [t.text for t in figure.iter(f"{SVG}text") if not t.get("data-fraction")]
    assert ticks[:2] == ["Nov 19", "Nov 20"]


def test_the_legend_can_hide_each_series_and_show_it_alone():
    figure = render([charts.Series("a", [1] * 60), charts.Series("b", [0] * 59 + [9])])

    entries = figure.find("ul").findall("li")
    drawn = lines(figure)

    assert [e.get("data-series") for e in entries] == ["0", "1"] == list(drawn)
    for entry in entries:
        toggle, only = entry.findall("button")
        assert (toggle.get("class"), toggle.get("aria-pressed")) == ("velo-toggle", "true")
        assert (only.get("class"), only.text) == ("velo-only", "only")
    assert [drawn[n].get("data-max") for n in ("0", "1")] == ["1", "9"]  # charts.js rescales
    labels = [e.find("button/span[@class='velo-label']").text for e in entries]
    assert labels == ["a (60)", "b (9)"]


def test_series_with_no_failures_are_left_out_and_an_empty_chart_says_so():
    figure = render([charts.Series("a", [0] * 60), charts.Series("b", [1] * 60)])
    assert [e.find("button/span[@class='velo-label']").text for e in figure.iter("li")] == [
        "b (60)"
    ]
    empty = str(charts.step_chart(BUCKETS, MINUTE, [charts.Series("a", [0] * 60)]))
    assert empty == '<p class="velo-empty">No errors in this range.</p>'


def test_labels_from_failed_records_are_escaped_everywhere():
    hostile = '<script>alert("x")</script> & \' '
    html = str(charts.step_chart(BUCKETS, MINUTE, [charts.Series(hostile, [1] * 60)]))

    figure = ET.fromstring(html)  # well-formed: nothing of the label became markup

    assert "<script>" not in html
    assert not list(figure.iter("script")) and not list(figure.iter(f"{SVG}script"))
    assert figure.find("ul/li/button/span[@class='velo-label']").text == f"{hostile} (60)"
    assert lines(figure)["0"].find(f"{SVG}title").text == f"{hostile} (60)"
