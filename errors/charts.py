"""Server-side SVG charts for the operator pages: counts over time, drawn true to time.

Each bucket's count is a flat step across the bucket's own width, and x is
proportional to time, so failures from 04:30 to 04:31 are drawn there and
nowhere else; the current bucket's step stops at "now". Series are separate
step lines, not stacked bands: a quiet group keeps its own shape next to a
noisy one. The legend (HTML under the picture, errors/static/errors/charts.js)
hides a series or shows one alone; the y axis then rescales to what is shown,
so an isolated quiet group gets its own scale. Without JavaScript the chart is
still whole. Hovering a bucket shows its time range and every series' count
there (an SVG <title>, the browser's own tooltip).

Labels are error templates and node names, i.e. text from failed records: they
go through format_html like everything else that reaches the page.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

PALETTE = ("#417690", "#e0822f", "#5b9b4a", "#b64a4a", "#8a63a8", "#c2a23a", "#3aa6a6")
OTHER_COLOUR = "#9a9a9a"
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
# Tick spacings the x axis may use: the first that gives at most MAX_TICKS labels.
TICK_STEPS = [
    timedelta(minutes=n) for n in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7200)
] + [timedelta(days=7)]
MAX_TICKS = 8
# A Monday at midnight UTC: ticks are round times counted from it.
EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Series:
    """One line of a chart: a label and a count per bucket."""

    label: str
    values: Sequence[int]
    colour: str = ""


def nice_ceiling(value):
    """The smallest 1, 2 or 5 × 10ⁿ at or above `value`, so the axis reads well.

    charts.js rescales with the same rule when the legend hides a series.
    """
    if value <= 0:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


@dataclass(frozen=True)
class Frame:
    """Where a moment and a count are drawn: x in pixels from the time, y from the count."""

    start: datetime
    stop: datetime
    width: int
    height: int

    @property
    def plot_w(self):
        return self.width - LEFT - RIGHT

    @property
    def plot_h(self):
        return self.height - TOP - BOTTOM

    @property
    def base(self):
        return TOP + self.plot_h

    def x(self, moment):
        return LEFT + (moment - self.start) / (self.stop - self.start) * self.plot_w


def step_chart(
    buckets: Sequence[datetime],
    step: timedelta,
    series: Sequence[Series],
    *,
    now=None,
    width=960,
    height=240,
):
    """Counts per bucket (`buckets` are their starts, `step` their width), one step line per
    series, with a legend that hides and isolates them; the current bucket ends at `now`."""
    series = [
        Series(s.label, s.values, s.colour or PALETTE[n % len(PALETTE)])
        for n, s in enumerate(s for s in series if any(s.values))
    ]
    if not series or not buckets:
        return format_html('<p class="velo-empty">{}</p>', "No errors in this range.")
    frame = Frame(buckets[0], buckets[-1] + step, width, height)
    ends = [b + step for b in buckets]
    if now is not None and buckets[-1] <= now < ends[-1]:
        ends[-1] = now  # the current bucket is drawn as far as it has got
    top = nice_ceiling(max(max(s.values) for s in series))
    return format_html(
        '<figure class="velo-chart-box" data-velo-chart="">'
        '<svg class="velo-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
        'width="100%" role="img" aria-label="Errors over time">'
        '{grid}<g class="velo-plot" transform="{transform}" data-base="{base}" data-height="{ph}">'
        "{lines}</g>{xaxis}{hover}</svg>{legend}</figure>",
        w=width,
        h=height,
        grid=_grid(top, frame),
        transform=_transform(frame, top),
        base=frame.base,
        ph=frame.plot_h,
        lines=format_html_join(
            "", "{}", ((_line(n, s, buckets, ends, frame),) for n, s in enumerate(series))
        ),
        xaxis=_x_axis(frame),
        hover=_hover(series, buckets, step, ends, frame),
        legend=_legend(series),
    )


def _transform(frame, top):
    """Counts are drawn as they are (y = count): this maps them onto the plot, so rescaling
    the axis changes one attribute, not every point."""
    return f"matrix(1 0 0 {-frame.plot_h / top:.6g} 0 {frame.base})"


def _line(n, s, buckets, ends, frame):
    """One series as steps: up or down to each bucket's count, flat across the bucket."""
    path = [f"M{frame.x(buckets[0]):.2f} 0"]
    for end, value in zip(ends, s.values, strict=True):
        path.append(f"V{value}H{frame.x(end):.2f}")
    path.append("V0")
    return format_html(
        '<g class="velo-series" data-series="{}" data-max="{}"><title>{} ({})</title>'
        '<path d="{}" stroke="{}" fill="{}" vector-effect="non-scaling-stroke"/></g>',
        n,
        max(s.values),
        s.label,
        sum(s.values),
        "".join(path),
        s.colour,
        s.colour,
    )


def _grid(top, frame):
    return format_html_join(
        "",
        '<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" class="velo-grid"/>'
        '<text x="{label_x}" y="{text_y}" text-anchor="end" class="velo-axis" '
        'data-fraction="{fraction}">{value}</text>',
        (
            {
                "left": LEFT,
                "right": frame.width - RIGHT,
                "y": f"{frame.base - fraction * frame.plot_h:.1f}",
                "label_x": LEFT - 6,
                "text_y": f"{frame.base - fraction * frame.plot_h + 4:.1f}",
                "fraction": fraction,
                "value": f"{top * fraction:g}",
            }
            for fraction in (0, 0.5, 1)
        ),
    )


def _x_axis(frame):
    """Ticks at round times (every 10 minutes, 4 hours, 5 days…), placed by time like the data."""
    span = frame.stop - frame.start
    every = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    fmt = "%b %d" if every >= timedelta(days=1) else "%H:%M"
    tick = frame.start + (-(frame.start - EPOCH) % every)  # the first round time
    ticks = []
    while tick <= frame.stop:
        x = frame.x(tick)
        anchor = "start" if x < LEFT + 20 else "end" if x > frame.width - RIGHT - 20 else "middle"
        label = timezone.localtime(tick).strftime(fmt)
        ticks.append({"x": f"{x:.2f}", "anchor": anchor, "label": label})
        tick += every
    return format_html_join(
        "",
        '<line x1="{x}" x2="{x}" y1="{top}" y2="{base}" class="velo-grid velo-tick"/>'
        '<text x="{x}" y="{text_y}" text-anchor="{anchor}" class="velo-axis">{label}</text>',
        ({**tick, "top": TOP, "base": frame.base, "text_y": frame.height - 8} for tick in ticks),
    )


def _hover(series, buckets, step, ends, frame):
    """A transparent column per bucket whose <title> is its time range and its counts."""
    columns = []
    for i, (start, end) in enumerate(zip(buckets, ends, strict=True)):
        x0, x1 = frame.x(start), frame.x(start + step)
        counts = [(s.label, s.values[i]) for s in series if s.values[i]]
        total = sum(n for _, n in counts)
        so_far = " so far" if end != start + step else ""
        plural = "" if total == 1 else "s"
        lines = [f"{_time_range(start, start + step)}: {total} error{plural}{so_far}"]
        lines += [f"{Truncator(label).chars(80)}: {n}" for label, n in counts]
        row = (f"{x0:.2f}", TOP, f"{x1 - x0:.2f}", frame.plot_h, start.isoformat(), total)
        columns.append((*row, "\n".join(lines)))
    return format_html_join(
        "",
        '<rect class="velo-bucket" x="{}" y="{}" width="{}" height="{}" data-start="{}" '
        'data-total="{}"><title>{}</title></rect>',
        columns,
    )


def _time_range(start, end):
    """ "Dec 02 04:30–04:31 UTC": the day once, the end's day too if it differs."""
    start, end = timezone.localtime(start), timezone.localtime(end)
    end_fmt = "%H:%M" if end.date() == start.date() else "%b %d %H:%M"
    return f"{start:%b %d %H:%M}–{end.strftime(end_fmt)} {start:%Z}"


def _legend(series):
    """HTML, so long labels wrap; each entry toggles its series, "only" shows it alone."""
    rows = (
        (n, s.colour, Truncator(s.label).chars(110), sum(s.values)) for n, s in enumerate(series)
    )
    return format_html(
        '<ul class="velo-chart-legend">{}</ul>',
        format_html_join(
            "",
            '<li data-series="{}"><button type="button" class="velo-toggle" aria-pressed="true" '
            'title="Hide or show this series"><span class="velo-swatch" style="background: {}">'
            '</span><span class="velo-label">{} ({})</span></button> <button type="button" '
            'class="velo-only" title="Show this series alone, on its own scale">only</button></li>',
            rows,
        ),
    )
