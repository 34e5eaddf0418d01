"""Reading the monitoring kit: the PromQL expressions of deploy/ and the metric names they use.

There is no YAML parser among Velo's dependencies, so the rules file is read with a
small reader for the only shapes it uses for `expr:` (an inline value or a block
scalar); the tests check that it found one expression per rule, and promtool checks
the file itself.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "alerts.yml"
ALERT_TESTS = DEPLOY / "alerts.test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "velo-dashboard.json"

# Words of PromQL that are not metric names when they are not followed by "(".
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$")


def metric_names(expr):
    """The metric names a PromQL expression selects (functions, keywords, labels dropped)."""
    if "__name__" in expr:
        raise ValueError(f"a {{__name__=…}} selector hides its metric from this check: {expr}")
    text = _STRING.sub('""', expr)  # label values, including Grafana's "$job_name"
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)  # by (le, job_name), on (job_name) …
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def grafana_query_names(query):
    """Metric names in a Grafana variable query: label_values(metric, label) or PromQL."""
    match = _LABEL_VALUES.match(query)
    if match:
        return metric_names(match.group(1))
    if re.match(r"^\s*label_values\(\s*\w+\s*\)\s*$", query):
        return set()  # label_values(label): every metric
    return metric_names(query)


# --- alerts.yml -------------------------------------------------------------------------


def _block_scalar(lines, start, key_indent):
    """The lines of a YAML block scalar (`expr: |` / `expr: >-`) after line `start`."""
    body = []
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= key_indent:
            break
        body.append(line)
    return "\n".join(body).strip()


def _inline(value):
    value = value.strip()
    if value.startswith('"') and value.endswith('"'):
        return json.loads(value)  # a double-quoted YAML scalar in the subset we write
    if value.startswith("'") and value.endswith("'"):
        return value[1:-1].replace("''", "'")
    return value


def rule_expressions(path=ALERTS):
    """{rule name: expr} for every alerting or recording rule of a rules file."""
    lines = Path(path).read_text().splitlines()
    rules, name = {}, None
    for i, line in enumerate(lines):
        stripped = line.strip()
        head = re.match(r"^-?\s*(alert|record):\s*(\S+)", stripped)
        if head:
            name = head.group(2)
            continue
        expr = re.match(r"^(\s*)(?:-\s*)?expr:\s*(.*)$", line)
        if expr:
            indent, value = len(expr.group(1)), expr.group(2).split(" #")[0].strip()
            if re.fullmatch(r"[|>][+-]?", value):
                rules[name] = _block_scalar(lines, i, indent)
            else:
                rules[name] = _inline(value)
    return rules


def rule_blocks(path=ALERTS):
    """{rule name: the text of its list item}, for checks on labels and annotations."""
    text = Path(path).read_text()
    parts = re.split(r"^\s*- (?:alert|record):\s*", text, flags=re.MULTILINE)[1:]
    return {part.split()[0]: part for part in parts}


# --- the Grafana dashboard --------------------------------------------------------------


def dashboard():
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(board=None):
    """Every panel, those inside collapsed rows included."""
    board = board or dashboard()
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions(board=None):
    """[(where, expr)] for every panel target; the variable queries are not PromQL."""
    return [
        (f"panel {panel['title']!r} target {target.get('refId')}", target["expr"])
        for panel in dashboard_panels(board)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def variable_queries(board=None):
    """[(variable name, query)] for the dashboard's query variables."""
    board = board or dashboard()
    out = []
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        out.append((variable["name"], query["query"] if isinstance(query, dict) else query))
    return out
