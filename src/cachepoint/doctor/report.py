"""Plain-text reports: the doctor's diagnosis with advice, and the cost report."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Any

from cachepoint.doctor.analysis import Finding
from cachepoint.doctor.costs import CostReport, Totals

MISSES = ("region-switch", "region-not-caching", "ttl-expired", "prefix-changed", "below-minimum",
          "too-many-checkpoints", "misplaced-checkpoint", "concurrent-write")  # fmt: skip


def diagnosis(findings: list[Finding], costs: CostReport) -> str:
    t = costs.total
    lines = [
        f"{len(findings)} requests; cache hit rate {t.hit_rate:.1%} (read {t.read:,} / written {t.write:,} tokens)",
        f"cost ${_money(t.cost)}, without caching ${_money(t.uncached_cost)}: " + _verdict(t.savings),
        "",
    ]
    counts = Counter(f.cause for f in findings)
    lines.append("outcomes: " + ", ".join(f"{cause} {n}" for cause, n in counts.most_common()))
    lines.append("")
    for finding in findings:
        if finding.cause in MISSES:
            r = finding.request
            lines.append(f"MISS {r.request_id} {_time(r.time_s)} {r.model_id} in {r.inference_region}: {finding.cause}"
                         + (f" — {finding.detail}" if finding.detail else ""))  # fmt: skip
    advice = _advice(findings)
    if advice:
        lines += ["", "advice:"] + [f"- {a}" for a in advice]
    return "\n".join(lines) + "\n"


def _advice(findings: list[Finding]) -> list[str]:
    causes = {f.cause: f for f in findings}
    advice = []
    if "region-switch" in causes:
        advice.append("Cross-Region routing wrote the same prefix again in another Region: pin one Region (a plain "
                      "model ID or an application profile copied from one Region), or let cachepoint route with "
                      "cache affinity.")  # fmt: skip
    never = sorted({f.data["region"] for f in findings if f.cause == "region-not-caching"})
    if never:
        advice.append(f"Region(s) {', '.join(never)} never cached this model's prompts: keep requests away from them.")
    if "prefix-changed" in causes:
        advice.append("Dynamic text (a timestamp, an id) sits before a checkpoint: move it after the last checkpoint.")
    gaps = [f.data["gap_s"] for f in findings if f.cause == "ttl-expired"]
    if any(300 <= g <= 3600 for g in gaps):
        advice.append("Reuse comes 5–60 minutes apart: a 1h TTL checkpoint (where the model offers it) would keep it.")
    if "below-minimum" in causes:
        advice.append("Checkpoints below the model's minimum do nothing: move them later or remove them.")
    if "too-many-checkpoints" in causes or "misplaced-checkpoint" in causes:
        advice.append("Some requests were rejected for their checkpoints: at most 4, each after a block it can close.")
    return advice


def cost_table(costs: CostReport, dimensions: tuple[str, ...] = ("model", "region", "account")) -> str:
    lines = [_row("total", costs.total)]
    for dimension in [*dimensions, *sorted(d for d in costs.by if d.startswith("tag:"))]:
        lines.append(f"\nby {dimension}:")
        for value, totals in sorted(costs.by.get(dimension, {}).items()):
            lines.append(_row(value, totals))
    return "\n".join(lines) + "\n"


def _row(name: str, t: Totals) -> str:
    unpriced = f" ({t.unpriced} unpriced)" if t.unpriced else ""
    return (f"  {name:<55} {t.requests:>6} req  hit {t.hit_rate:6.1%}  cost ${_money(t.cost):>10}  "
            f"saved ${_money(t.savings):>10}{unpriced}")  # fmt: skip


def _verdict(savings: Decimal) -> str:
    if savings >= 0:
        return f"caching saved ${_money(savings)}"
    return f"caching cost ${_money(-savings)} more (writes are priced above input; too few reads followed them)"


def _money(value: Decimal) -> str:
    return f"{value:.4f}"


def _time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def as_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [{"requestId": f.request.request_id, "cause": f.cause, "detail": f.detail, **f.data} for f in findings]
