"""Figure 3: a /metrics scrape with 1,000,000 DLQ entries against the same scrape with 1,000.

Called twice by the plan: once with the small DLQ (the reference) and once
with the big one; `row` pairs the two.
"""

from ..pages import client, page_time
from ..timing import Row


def scrape(repeats):
    """(median seconds, exposition bytes, sample lines) of GET /metrics."""
    c = client(logged_in=False)
    seconds, size = page_time(c, "/metrics", repeats)
    body = c.get("/metrics").content.decode()
    samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return seconds, size, samples


def row(big, small, big_entries, small_entries):
    (velo, velo_bytes, velo_lines), (ref, ref_bytes, ref_lines) = big, small
    return Row(
        f"3 /metrics scrape, {big_entries:,} vs {small_entries:,} entries",
        velo,
        ref,
        "ms",
        1.2,
        False,
        "<= 1.2x",
        note=f"exposition {velo_bytes:,} bytes / {velo_lines} samples at {big_entries:,} "
        f"entries, {ref_bytes:,} bytes / {ref_lines} samples at {small_entries:,}",
    )
