"""The error history pages, /errors/ and /errors/<id>/: which errors, how often, since when."""

from collections import Counter

from django.contrib import admin
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.text import Truncator

from common.access import may_view, view_required

from . import charts, panels, selectors
from .models import ErrorGroup, ErrorOccurrence

CHART_GROUPS = 6
TABLE_GROUPS = 100
TIMELINE_VERSIONS = 6
FILTER_LABELS = {"job_name": "Job", "node_id": "Node", "region": "Region", "version": "Version"}
BREAKDOWNS = (("node_id", "Node"), ("version", "Version"), ("region", "Region"))
# A place with at least this share of a group's failures (of two or more) is called out.
HOTSPOT_PERCENT = 50


def page(request, template, title, status=200, **context):
    """Render an operator page inside the admin's frame (header, login state, theme)."""
    frame = admin.site.each_context(request)
    frame.update(title=title, is_nav_sidebar_enabled=False)
    return render(request, template, {**frame, **context}, status=status)


@view_required(ErrorGroup)
def history(request):
    now = timezone.now()
    flt = selectors.HistoryFilter.from_query(request.GET, now=now)
    ranked = selectors.top_groups(flt, limit=TABLE_GROUPS)
    chart, total = _history_chart(flt, ranked[:CHART_GROUPS], now)
    return page(
        request,
        "errors/history.html",
        "Error history",
        flt=flt,
        ranges=list(selectors.RANGES),
        filters=_filters(flt),
        rows=ranked,
        table_limit=TABLE_GROUPS,
        chart=chart,
        total=total,
        range_query=f"?range={flt.window.key}",
    )


@view_required(ErrorGroup)
def group_detail(request, group_id):
    group = get_object_or_404(ErrorGroup, pk=group_id)
    now = timezone.now()
    window = selectors.Window.parse(request.GET.get("range", ""), now=now)
    by_version = selectors.group_counts_by(group, window, "version")
    total = sum(by_version.values())
    return page(
        request,
        "errors/group.html",
        f"Error group #{group.pk}",
        group=group,
        window=window,
        ranges=list(selectors.RANGES),
        total=total,
        chart=_version_timeline(window, by_version, now),
        breakdowns=[
            _breakdown(title, selectors.group_breakdown(group, window, field, total=total))
            for field, title in BREAKDOWNS
        ],
        # None (the table replaced by a note) for whoever may not view occurrences.
        occurrences=_recent_occurrences(request, group)
        if may_view(request, ErrorOccurrence)
        else None,
        panels=panels.render(request, group),
    )


def _recent_occurrences(request, group):
    """The latest occurrences, each with where its records are in the DLQ (when it has a
    batch, the DLQ is there and the operator may view it)."""
    occurrences = selectors.recent_occurrences(group)
    for occurrence in occurrences:
        occurrence.entries_url = panels.entries_url(request, group.pk, occurrence.batch_id)
    return occurrences


def _filters(flt):
    """(name, label, values, chosen) per filter; a chosen value stays listed even if unseen."""
    options = selectors.filter_options(flt.window)
    rows = []
    for name, values in options.items():
        chosen = getattr(flt, name)
        if chosen and chosen not in values:
            values.insert(0, chosen)
        rows.append((name, FILTER_LABELS[name], values, chosen))
    return rows


def group_label(group):
    return (
        f"#{group.pk} {group.job_name} · {group.error_type}: {Truncator(group.template).chars(90)}"
    )


def _history_chart(flt, top, now):
    """A line for each top group, one for every other group; also the window's total."""
    buckets = flt.window.buckets()
    totals = selectors.totals_by_bucket(flt)
    ids = [group.pk for group, _ in top]
    counts = selectors.counts_by_group_and_bucket(flt, ids) if ids else {}
    series = [
        charts.Series(group_label(group), [counts.get((group.pk, b), 0) for b in buckets])
        for group, _ in top
    ]
    other = [
        max(0, totals.get(b, 0) - sum(s.values[i] for s in series)) for i, b in enumerate(buckets)
    ]
    series.append(charts.Series("every other group", other, charts.OTHER_COLOUR))
    return charts.step_chart(buckets, flt.window.step, series, now=now), sum(totals.values())


def _version_timeline(window, by_version, now):
    """A group's timeline by version: a bad deploy shows as a new line taking over."""
    buckets = window.buckets()
    per_version = Counter()
    for (_, version), n in by_version.items():
        per_version[version] += n
    ranked = [version for version, _ in per_version.most_common()]
    top, rest = ranked[:TIMELINE_VERSIONS], set(ranked[TIMELINE_VERSIONS:])
    series = [
        charts.Series(
            f"version {version or '(none)'}", [by_version.get((b, version), 0) for b in buckets]
        )
        for version in top
    ]
    if rest:
        other = Counter()
        for (bucket, version), n in by_version.items():
            if version in rest:
                other[bucket] += n
        series.append(
            charts.Series("other versions", [other[b] for b in buckets], charts.OTHER_COLOUR)
        )
    return charts.step_chart(buckets, window.step, series, now=now)


def _breakdown(title, shares):
    hotspot = shares[0] if len(shares) > 1 and shares[0].percent >= HOTSPOT_PERCENT else None
    return {"title": title, "rows": shares, "hotspot": hotspot}
