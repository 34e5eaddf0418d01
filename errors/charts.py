"""Server-side SVG charts for the operator pages: no JavaScript, no CDN, every label escaped.

Labels are error templates and node names, i.e. text from failed records: they
go through format_html like everything else that reaches the page.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

PALETTE = ("#417690", "#e0822f", "#5b9b4a", "#b64a4a", "#8a63a8", "#c2a23a", "#3aa6a6")
OTHER_COLOUR = "#b8b8b8"
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
LEGEND_ROW = 18


@dataclass(frozen=True)
class Series:
    """One band of a stacked chart: a label and a count per bucket."""

    label: str
    values: Sequence[int]
    colour: str = ""


def nice_ceiling(value):
    """The smallest 1, 2 or 5 × 10ⁿ at or above `value`, so the axis reads well."""
    if value <= 0:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def stacked_area(buckets: Sequence[datetime], series: Sequence[Series], *, width=960, height=240):
    """Counts over time, one stacked band per series, with a legend under the plot."""
    series = [s for s in series if any(s.values)]
    if not series:
        return format_html('<p class="velo-empty">{}</p>', "No errors in this range.")
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    totals = [sum(values) for values in zip(*(s.values for s in series), strict=True)]
    top = nice_ceiling(max(totals))

    def x(i):
        return LEFT + (i * plot_w / (len(buckets) - 1) if len(buckets) > 1 else plot_w / 2)

    def y(count):
        return TOP + plot_h - count * plot_h / top

    bands, below = [], [0] * len(buckets)
    for n, s in enumerate(series):
        above = [b + v for b, v in zip(below, s.values, strict=True)]
        upper = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(above)]
        lower = [f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(below)))]
        if len(buckets) == 1:  # one bucket: draw it as a column across the plot
            upper = [f"{LEFT},{y(above[0]):.1f}", f"{LEFT + plot_w},{y(above[0]):.1f}"]
            lower = [f"{LEFT + plot_w},{y(below[0]):.1f}", f"{LEFT},{y(below[0]):.1f}"]
        colour = s.colour or PALETTE[n % len(PALETTE)]
        bands.append((" L".join(upper + lower), colour, f"{s.label}: {sum(s.values)}"))
        below = above

    legend_top = height + 4
    full_height = legend_top + LEGEND_ROW * len(series)
    return format_html(
        '<svg class="velo-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
        'width="100%" role="img" aria-label="{label}">{grid}{bands}{xaxis}{legend}</svg>',
        w=width,
        h=full_height,
        label="Errors over time",
        grid=_grid(top, y, width),
        bands=format_html_join(
            "",
            '<path d="M{} Z" fill="{}" fill-opacity="0.85"><title>{}</title></path>',
            bands,
        ),
        xaxis=_x_labels(buckets, x, height),
        legend=_legend(series, bands, legend_top),
    )


def _grid(top, y, width):
    return format_html_join(
        "",
        '<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" class="velo-grid"/>'
        '<text x="{label_x}" y="{text_y}" text-anchor="end" class="velo-axis">{value}</text>',
        (
            {
                "left": LEFT,
                "right": width - RIGHT,
                "y": f"{y(value):.1f}",
                "label_x": LEFT - 6,
                "text_y": f"{y(value) + 4:.1f}",
                "value": f"{value:g}",
            }
            for value in (0, top / 2, top)
        ),
    )


def _x_labels(buckets, x, height, *, count=6):
    daily = len(buckets) > 1 and buckets[1] - buckets[0] >= timedelta(days=1)
    fmt = "%b %d" if daily or len(buckets) > 48 else "%H:%M"
    step = max(1, (len(buckets) - 1) // (count - 1))
    picks = range(0, len(buckets), step) if len(buckets) > 1 else [0]
    last = len(buckets) - 1

    def anchor(i):  # the end labels stay inside the picture
        return "start" if i == 0 and last else "end" if i == last and last else "middle"

    return format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="{}" class="velo-axis">{}</text>',
        (
            (f"{x(i):.1f}", height - 8, anchor(i), timezone.localtime(buckets[i]).strftime(fmt))
            for i in picks
        ),
    )


def _legend(series, bands, top):
    rows = []
    for n, (s, (_, colour, _)) in enumerate(zip(series, bands, strict=True)):
        at = top + n * LEGEND_ROW
        label = Truncator(s.label).chars(110)
        rows.append((LEFT, at, colour, LEFT + 16, at + 10, label, sum(s.values)))
    return format_html_join(
        "",
        '<rect x="{}" y="{}" width="11" height="11" fill="{}"/>'
        '<text x="{}" y="{}" class="velo-legend">{} ({})</text>',
        rows,
    )
