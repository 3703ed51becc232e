"""`cachepoint doctor --html OUT.html`: the diagnosis as one self-contained page people can read (pure: returns
text; no script, no external resource; every value from the logs is escaped, since logs can be hostile).

- a timeline per cached prefix: each request a mark at its time, coloured by what happened, with its cause;
- hit rate by idle gap (under 5 min, 5-60 min, over 60 min since the previous use of the same prefix);
- the cost and savings table (by model and Region);
- the advice, with its computed figures, and what was skipped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from cachepoint.doctor.analysis import Finding, prefix_key
from cachepoint.doctor.costs import CostReport, Totals
from cachepoint.doctor.report import advice_lines
from cachepoint.doctor.skips import Skipped
from cachepoint.doctor.whatif import LongerTtl

COLOURS = {"hit": "#2e7d32", "first-write": "#1565c0", "ttl-expired": "#ef6c00", "region-switch": "#c62828",
           "prefix-changed": "#6a1b9a", "region-not-caching": "#ad1457", "below-minimum": "#757575",
           "implicit-hit": "#66bb6a"}  # fmt: skip
OTHER_COLOUR = "#455a64"
GAPS = (("under 5 min", 0, 300), ("5-60 min", 300, 3600), ("over 60 min", 3600, float("inf")))
MAX_PREFIXES = 50  # timelines drawn (most requested first); the rest are counted
WIDTH, ROW = 900, 28

STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:22px}
h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}"""


def render_html(
    findings: Sequence[Finding], costs: CostReport, what_if: LongerTtl | None, skipped: Sequence[Skipped]
) -> str:
    t = costs.total
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>cachepoint doctor</title>",
        f"<style>{STYLE}</style></head><body><h1>cachepoint doctor</h1>",
        f"<p id='summary'>{len(findings)} requests; cache hit rate {t.hit_rate:.1%} (read {t.read:,} / written "
        f"{t.write:,} tokens); cost ${_money(t.cost)}, without caching ${_money(t.uncached_cost)}.</p>",
        _timelines(findings),
        _gaps(findings),
        _costs(costs),
        _advice(findings, what_if),
        _skipped(skipped),
        "</body></html>",
    ]
    return "\n".join(parts)


def _timelines(findings: Sequence[Finding]) -> str:
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.request.prefix_text is not None:
            groups.setdefault(prefix_key(f.request), []).append(f)
    if not groups:
        return "<h2>Timeline per prefix</h2><p>No request carried a cached prefix (or bodies were not logged).</p>"
    shown = sorted(groups.values(), key=len, reverse=True)[:MAX_PREFIXES]
    start = min(f.request.time_s for f in findings)
    span = max(max(f.request.time_s for f in findings) - start, 1.0)
    causes = sorted({f.cause for g in shown for f in g})
    legend = "".join(f"<span><i class='swatch' style='background:{_colour(c)}'></i>{escape(c)}</span>" for c in causes)
    rows = []
    for i, group in enumerate(shown):
        y = i * ROW + 14
        label = escape(f"{group[0].request.base_model} · {(group[0].request.prefix_text or '')[:40]!r}")
        marks = "".join(_mark(f, 260 + (f.request.time_s - start) / span * (WIDTH - 280), y) for f in group)
        rows.append(f"<text x='0' y='{y + 4}' font-size='11'>{label}</text>"
                    f"<line x1='260' x2='{WIDTH - 20}' y1='{y}' y2='{y}' stroke='#ddd'/>{marks}")  # fmt: skip
    more = len(groups) - len(shown)
    note = f"<p>{more} more prefixes not drawn.</p>" if more > 0 else ""
    height = len(shown) * ROW + 10
    return (f"<h2>Timeline per prefix</h2><div class='legend'>{legend}</div>"
            f"<svg id='timeline' width='{WIDTH}' height='{height}'>{''.join(rows)}</svg>{note}")  # fmt: skip


def _mark(f: Finding, x: float, y: int) -> str:
    detail = f" - {f.detail}" if f.detail else ""
    title = escape(f"{_when(f.request.time_s)} {f.request.inference_region}: {f.cause}{detail}")
    return (f"<circle class='mark' data-outcome='{escape(f.cause)}' cx='{x:.1f}' cy='{y}' r='6' "
            f"fill='{_colour(f.cause)}'><title>{title}</title></circle>")  # fmt: skip


def _gaps(findings: Sequence[Finding]) -> str:
    """Each reuse of a prefix (a request after the first of its group) by its idle gap: read, or not."""
    last: dict[str, float] = {}
    reads: Counter[str] = Counter()
    uses: Counter[str] = Counter()
    for f in findings:
        if f.request.prefix_text is None:
            continue
        key = prefix_key(f.request)
        if key in last:
            gap = f.request.time_s - last[key]
            name = next(n for n, low, high in GAPS if low <= gap < high)
            uses[name] += 1
            reads[name] += f.cause == "hit"
        last[key] = f.request.time_s
    bars = []
    for i, (name, _, _) in enumerate(GAPS):
        rate = reads[name] / uses[name] if uses[name] else 0.0
        height = rate * 120
        x = 40 + i * 140
        label = f"{rate:.0%} of {uses[name]}"
        bars.append(f"<rect class='gap' data-gap='{name}' data-uses='{uses[name]}' data-reads='{reads[name]}' x='{x}'"
                    f" y='{140 - height:.1f}' width='90' height='{height:.1f}' fill='#1565c0'/>"
                    f"<text x='{x}' y='158' font-size='12'>{name}</text>"
                    f"<text x='{x}' y='{134 - height:.1f}' font-size='12'>{label}</text>")  # fmt: skip
    return ("<h2>Hit rate by idle gap since the previous use</h2>"
            f"<svg id='gaps' width='480' height='170'>{''.join(bars)}</svg>")  # fmt: skip


def _costs(costs: CostReport) -> str:
    rows = [_row("total", costs.total)]
    for dimension in ("model", "region"):
        rows += [_row(f"{dimension}: {value}", totals) for value, totals in sorted(costs.by.get(dimension, {}).items())]
    head = "<tr><th></th><th>requests</th><th>hit rate</th><th>cost</th><th>saved</th></tr>"
    return f"<h2>Cost and savings</h2><table id='costs'>{head}{''.join(rows)}</table>"


def _row(name: str, t: Totals) -> str:
    return (f"<tr><td>{escape(name)}</td><td>{t.requests:,}</td><td>{t.hit_rate:.1%}</td><td>${_money(t.cost)}</td>"
            f"<td>${_money(t.savings)}</td></tr>")  # fmt: skip


def _advice(findings: Sequence[Finding], what_if: LongerTtl | None) -> str:
    items = advice_lines(list(findings), what_if)
    body = "".join(f"<li>{escape(a)}</li>" for a in items) or "<li>Nothing to change: every reuse was a read.</li>"
    return f"<h2>Advice</h2><ul id='advice'>{body}</ul>"


def _skipped(skipped: Sequence[Skipped]) -> str:
    if not skipped:
        return ""
    rows = "".join(f"<li>{escape(s.source)}: {s.count} {escape(s.reason.label(s.count))}</li>" for s in skipped)
    return f"<h2>Skipped inputs</h2><ul id='skipped'>{rows}</ul>"


def _colour(cause: str) -> str:
    return COLOURS.get(cause, OTHER_COLOUR)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _money(value: Decimal) -> str:
    return f"{value:.4f}"
