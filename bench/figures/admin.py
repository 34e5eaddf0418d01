"""Figure 4: the DLQ admin list at 1,000,000 entries against a stock ModelAdmin (bench/stock_admin).

Four lists: unfiltered, job + status, one error group, a search in the error
text. Also the entry's page and /errors/ (issue 3 asks for their timings).
"""

from django.db.models import Count

from dlq.models import DLQEntry, Job

from ..pages import client, page_time
from ..timing import Row

VELO = "/admin/dlq/dlqentry/"
STOCK = "/bench-stock-admin/dlq/dlqentry/"
UNFILTERED_LIMIT = 0.100


def views(per_group, groups_by_job, search_term):
    job = Job.objects.get(name="pipeline-01")
    top_group = max(groups_by_job[job.name], key=lambda g: per_group.get(g, 0))
    return [
        ("unfiltered", "", None),
        ("job + status", f"?job__id__exact={job.pk}&status__exact=pending", None),
        ("error group", f"?error_group__id__exact={top_group}", per_group[top_group]),
        ("search error text", f"?q={search_term}", per_group_matching(search_term)),
    ]


def per_group_matching(term):
    return DLQEntry.objects.filter(error_message__contains=term).aggregate(n=Count("pk"))["n"]


def run(per_group, groups_by_job, search_term, repeats, log):
    c = client()
    rows, pages = [], []
    for name, query, matching in views(per_group, groups_by_job, search_term):
        velo, velo_bytes = page_time(c, VELO + query, repeats)
        stock, stock_bytes = page_time(c, STOCK + query, max(3, repeats // 2))
        log(
            f"  {name}: velo {velo * 1000:.1f} ms ({velo_bytes:,} B), "
            f"stock {stock * 1000:.1f} ms ({stock_bytes:,} B)"
        )
        unfiltered = name == "unfiltered"
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
                note=f"{query or 'no query'}"
                + (f" ({matching:,} entries match)" if matching is not None else ""),
            )
        )
        pages.append((f"DLQ list, {name}", velo))
    entry = (
        DLQEntry.objects.filter(status="pending").order_by("-pk").values_list("pk", flat=True)[5000]
    )
    detail, _ = page_time(c, f"{VELO}{entry}/change/", repeats)
    pages.append(("DLQ entry detail page", detail))
    return rows, pages
