"""Figure 4: the DLQ admin list at 1,000,000 entries against a stock ModelAdmin (bench/stock_admin).

The lists as an operator opens them: the default page (pending entries, with the
group column, the record excerpt and the sidebar's group filter), every status,
job + status, one error group as the sidebar links it, a search in the error
text, and a payload search within one job's pending entries (its rows scanned
printed). Also the entry's page (issue 3 asks for its timing).
"""

from django.db.models import Count

from dlq.admin.filters import ErrorGroupFilter
from dlq.models import DLQEntry, Job
from errors.models import ErrorGroup

from ..pages import client, page_time
from ..timing import Row

VELO = "/admin/dlq/dlqentry/"
STOCK = "/bench-stock-admin/dlq/dlqentry/"
STOCK_PAYLOAD = "/bench-stock-payload-admin/dlq/dlqentry/"
UNFILTERED_LIMIT = 0.100
PENDING = "status__exact=pending"
TRADE_ID = "T-1234"


def sidebar_group():
    """The first group the sidebar offers (the biggest backlog): what an operator clicks."""
    return (
        ErrorGroup.objects.filter(dlq_pending__gt=0)
        .order_by("-dlq_pending", "-count")
        .values_list("pk", flat=True)[: ErrorGroupFilter.OFFERED]
        .first()
    )


def payload_value(job):
    """One pending record of `job` given a trade id, as an operator pastes it from a ticket.

    The loaded records share their bodies, so one gets a value of its own; the
    search still reads every pending entry of the job to find it.
    """
    entry = DLQEntry.objects.filter(job=job, status="pending").order_by("pk").only("payload")[500]
    DLQEntry.objects.filter(pk=entry.pk).update(payload={**entry.payload, "trade_id": TRADE_ID})
    return TRADE_ID, entry.pk


def views(search_term):
    """(name, Velo's query, stock's query, entries matching or None, goal text, goal ratio)."""
    job = Job.objects.get(name="pipeline-01")
    group = sidebar_group()
    job_status = f"job__id__exact={job.pk}&{PENDING}"
    return [
        # Velo opens on the pending entries; stock shows them when asked.
        ("unfiltered (pending by default)", "", f"?{PENDING}", None),
        ("all statuses", "?status__exact=all", "", None),
        ("job + status", f"?{job_status}", f"?{job_status}", None),
        (
            "error group (sidebar)",
            f"?error_group__id__exact={group}",
            f"?error_group__id__exact={group}&{PENDING}",
            matching(error_group_id=group, status="pending"),
        ),
        (
            "search error text",
            f"?q={search_term}",
            f"?q={search_term}&{PENDING}",
            matching(error_message__contains=search_term, status="pending"),
        ),
    ]


def matching(**filters):
    return DLQEntry.objects.filter(**filters).aggregate(n=Count("pk"))["n"]


def payload_search(c, repeats, log):
    """One job's pending entries searched for a value of one record: Velo's jsonpath against
    the stock admin's search_fields over the JSON column, with the rows each must read."""
    job = Job.objects.get(name="pipeline-01")
    value, entry_id = payload_value(job)
    query = f"?job__id__exact={job.pk}&{PENDING}&q={value}"
    scanned = matching(job=job, status="pending")
    velo, velo_bytes = page_time(c, VELO + query, repeats)
    content = c.get(VELO + query).content.decode()
    assert f"{VELO}{entry_id}/change/" in content, (value, entry_id)
    stock, stock_bytes = page_time(c, STOCK_PAYLOAD + query, max(3, repeats // 2))
    log(
        f"  payload search: velo {velo * 1000:.1f} ms ({velo_bytes:,} B), "
        f"stock {stock * 1000:.1f} ms ({stock_bytes:,} B); {scanned:,} rows scanned"
    )
    row = Row(
        "4 DLQ admin list: payload search",
        velo,
        stock,
        "ms",
        None,
        False,
        "info (rows scanned = the job's pending)",
        note=f"{query} ({scanned:,} rows scanned: pipeline-01's pending entries; 1 found)",
    )
    return row, ("DLQ list, payload search (job + pending)", velo)


def run(per_group, groups_by_job, search_term, repeats, log):
    c = client()
    rows, pages = [], []
    for name, query, stock_query, matches in views(search_term):
        velo, velo_bytes = page_time(c, VELO + query, repeats)
        stock, stock_bytes = page_time(c, STOCK + stock_query, max(3, repeats // 2))
        log(
            f"  {name}: velo {velo * 1000:.1f} ms ({velo_bytes:,} B), "
            f"stock {stock * 1000:.1f} ms ({stock_bytes:,} B)"
        )
        unfiltered = name.startswith("unfiltered")
        rows.append(
            Row(
                f"4 DLQ admin list: {name}",
                velo,
                stock,
                "ms",
                0.5,
                False,
                "<= 0.5x stock" + (", <= 100 ms" if unfiltered else ""),
                extra_ok=velo <= UNFILTERED_LIMIT if unfiltered else True,
                note=f"{query or 'no query'} (stock: {stock_query or 'no query'})"
                + (f" ({matches:,} entries match)" if matches is not None else ""),
            )
        )
        pages.append((f"DLQ list, {name}", velo))
    row, page = payload_search(c, repeats, log)
    rows.append(row)
    pages.append(page)
    entry = (
        DLQEntry.objects.filter(status="pending").order_by("-pk").values_list("pk", flat=True)[5000]
    )
    detail, _ = page_time(c, f"{VELO}{entry}/change/", repeats)
    pages.append(("DLQ entry detail page", detail))
    return rows, pages
