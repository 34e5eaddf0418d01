"""The one table `make bench` prints: figure, Velo, reference, ratio, goal, pass/fail."""

HEADERS = ("figure", "Velo", "reference", "ratio", "goal", "result")


def _value(value, unit):
    if unit == "ms":
        return f"{value * 1000:,.1f} ms"
    if unit == "MiB":
        return f"{value / 2**20:,.1f} MiB"
    if unit == "GA":
        return f"{value:.3f}"
    if unit == "s":
        return f"{value:,.1f} s"
    if unit == "us":
        return f"{value:,.1f} µs"
    return f"{value:,.0f} {unit}"


def _result(row):
    if row.passed is None:
        return "info"
    return "PASS" if row.passed else "FAIL"


def _ratio(ratio):
    """Two decimals, or two significant digits for a small ratio (log lines per record)."""
    return f"{ratio:.2f}x" if ratio >= 0.1 or ratio == 0 else f"{ratio:.2g}x"


def render(rows):
    cells = [HEADERS] + [
        (
            row.figure,
            _value(row.velo, row.unit),
            _value(row.reference, row.unit),
            _ratio(row.ratio),
            row.goal_text,
            _result(row),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    out = []
    for n, line in enumerate(cells):
        out.append(
            " | ".join(
                cell.ljust(w) if i in (0, 4) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


def notes(rows):
    return [f"  {row.figure}: {row.note}" for row in rows if row.note]
