"""Plain-text reports: the doctor's diagnosis with advice, and the cost report."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from cachepoint.doctor.analysis import Finding
from cachepoint.doctor.costs import CostReport, Totals
from cachepoint.doctor.skips import Skipped, SkipReason
from cachepoint.doctor.whatif import LongerTtl

MISSES = ("region-switch", "region-not-caching", "ttl-expired", "prefix-changed", "below-minimum",
          "too-many-checkpoints", "misplaced-checkpoint", "concurrent-write")  # fmt: skip
SHOWN_SOURCES = 3  # file names per reason in the one-line summary
SHOWN_DETAILS = 10  # detail lines under it; --json has every one


def diagnosis(findings: list[Finding], costs: CostReport, what_if: LongerTtl | None = None) -> str:
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
    advice = advice_lines(findings, what_if)
    if advice:
        lines += ["", "advice:"] + [f"- {a}" for a in advice]
    return "\n".join(map(_printable, lines)) + "\n"


def advice_lines(findings: list[Finding], what_if: LongerTtl | None) -> list[str]:
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
    if what_if is not None and what_if.turned:
        turned, saved = f"{what_if.turned} of these {what_if.expiries} expiries", _money(what_if.saved_usd)
        advice.append(f"A 1h TTL would have turned {turned} into reads and saved ${saved} (each 5m write read "
                      "instead, the write before it at the 1h price): use `\"ttl\": \"1h\"` on checkpoints reused "
                      "5–60 minutes apart.")  # fmt: skip
    if "below-minimum" in causes:
        advice.append("Checkpoints below the model's minimum do nothing: move them later or remove them.")
    if "too-many-checkpoints" in causes or "misplaced-checkpoint" in causes:
        advice.append("Some requests were rejected for their checkpoints: at most 4, each after a block it can close.")
    return advice


def cost_table(costs: CostReport, dimensions: tuple[str, ...] = ("model", "region", "account")) -> str:
    lines = [_row("total", costs.total)]
    for dimension in [*dimensions, *sorted(d for d in costs.by if d.startswith("tag:"))]:
        lines.append(f"\nby {_printable(dimension)}:")
        for value, totals in sorted(costs.by.get(dimension, {}).items()):
            lines.append(_row(value, totals))
    return "\n".join(lines) + "\n"


def _row(name: str, t: Totals) -> str:
    unpriced = f" ({t.unpriced} unpriced)" if t.unpriced else ""
    return (f"  {_printable(name):<55} {t.requests:>6} req  hit {t.hit_rate:6.1%}  cost ${_money(t.cost):>10}  "
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


def skipped_json(skipped: Sequence[Skipped]) -> list[dict[str, Any]]:
    return [{"source": s.source, "reason": str(s.reason), "count": s.count, "detail": s.detail} for s in skipped]


def skipped_summary(skipped: Sequence[Skipped]) -> str:
    """One line, e.g. `skipped 3 inputs: 1 malformed gzip (a.json.gz), 2 invalid records (b.jsonl ×2)`."""
    by_reason: dict[SkipReason, list[Skipped]] = {}
    for entry in skipped:
        by_reason.setdefault(entry.reason, []).append(entry)
    total = sum(s.count for s in skipped)
    parts = [_skipped_part(reason, entries) for reason, entries in by_reason.items()]
    return _printable(f"skipped {total} input{'' if total == 1 else 's'}: " + ", ".join(parts))


def skipped_text(skipped: Sequence[Skipped], limit: int = SHOWN_DETAILS) -> str:
    """The summary line, then why, per file and reason (its first occurrence), for the first `limit` entries."""
    if not skipped:
        return ""
    lines = [skipped_summary(skipped)] + [_printable(f"  {s.source}: {s.detail}") for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  … and {len(skipped) - limit} more (--json lists them all)")
    return "\n".join(lines) + "\n"


def nothing_read(source: str, skipped: Sequence[Skipped]) -> str:
    why = f"; {skipped_summary(skipped)}" if skipped else ""
    return _printable(f"no invocation records in {source}{why}")


def _skipped_part(reason: SkipReason, entries: list[Skipped]) -> str:
    count = sum(s.count for s in entries)
    names = [s.source + (f" ×{s.count}" if s.count > 1 else "") for s in entries[:SHOWN_SOURCES]]
    if len(entries) > SHOWN_SOURCES:
        names.append(f"{len(entries) - SHOWN_SOURCES} more")
    return f"{count} {reason.label(count)} ({', '.join(names)})"


def _printable(text: str) -> str:
    """Log content is untrusted: a control character (a terminal escape) or a lone surrogate is shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
