"""A bounded in-memory history of recent invocations for the dashboard: per-minute totals overall, per Region
and per replica; miss causes per minute; hit rate by idle gap; the prefixes that saved and lost the most."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cachepoint.cache.plan import CheckpointReport, Outcome
from cachepoint.telemetry.records import Invocation

MAX_POINTS = 20_000
TOP_PREFIXES = 10
# idle gap buckets against the TTLs in force: within 5 minutes, within the hour, beyond
GAPS = (("under 5 min", 300.0), ("5-60 min", 3600.0), ("over 60 min", float("inf")))
_SKIPPED = {Outcome.BELOW_MINIMUM: "below-minimum", Outcome.OVER_CEILING: "over-ceiling"}


@dataclass(frozen=True)
class Point:
    minute: int
    region: str
    read: int
    write: int
    uncached: int
    output: int
    cost: Decimal
    uncached_cost: Decimal
    ttft_ms: int | None
    cached: bool
    replica: str = ""
    causes: tuple[str, ...] = ()  # why each checkpoint that did not read missed
    prefix: str = ""
    model: str = ""
    reuse: tuple[tuple[float, bool], ...] = ()
    lost: Decimal = Decimal(0)


class History:
    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self._points: deque[Point] = deque(maxlen=max_points)
        self._lock = threading.Lock()

    def add(self, inv: Invocation) -> None:
        if inv.usage is None or inv.error_code is not None:
            return
        u = inv.usage
        point = Point(
            minute=int(inv.timestamp_s // 60),
            region=inv.inference_region or inv.region,
            read=u.cache_read_tokens,
            write=u.cache_write_tokens,
            uncached=u.input_tokens,
            output=u.output_tokens,
            cost=inv.cost_usd or Decimal(0),
            uncached_cost=inv.uncached_cost_usd or Decimal(0),
            ttft_ms=inv.first_token_ms,
            cached=u.cache_read_tokens > 0,
            replica=inv.replica,
            causes=tuple(c for r in inv.reports if (c := _cause(r))),
            prefix=inv.prefix,
            model=inv.model_id,
            reuse=inv.reuse,
            lost=inv.lost_usd or Decimal(0),
        )
        with self._lock:
            self._points.append(point)

    def series(self) -> dict[str, Any]:
        """Per-minute totals, overall and per Region, as plain JSON for the dashboard."""
        with self._lock:
            points = list(self._points)
        minutes = sorted({p.minute for p in points})
        regions = sorted({p.region for p in points})
        replicas = sorted({p.replica for p in points if p.replica})
        return {
            "minutes": [m * 60 for m in minutes],
            "total": _bucket(points, minutes),
            "regions": {r: _bucket([p for p in points if p.region == r], minutes) for r in regions},
            "replicas": {r: _bucket([p for p in points if p.replica == r], minutes) for r in replicas},
            "causes": _causes(points, minutes),
            "idle_gaps": _idle_gaps(points),
            "prefixes": _prefixes(points),
        }


def _cause(report: CheckpointReport) -> str | None:
    if report.outcome is Outcome.WRITTEN and report.cause is not None:
        return report.cause.value
    return _SKIPPED.get(report.outcome)


def _causes(points: list[Point], minutes: list[int]) -> dict[str, list[int]]:
    """Misses per cause per minute (the stacked bars)."""
    names = sorted({c for p in points for c in p.causes})
    counts = {name: [0] * len(minutes) for name in names}
    column = {m: i for i, m in enumerate(minutes)}
    for p in points:
        for cause in p.causes:
            counts[cause][column[p.minute]] += 1
    return counts


def _idle_gaps(points: list[Point]) -> list[dict[str, Any]]:
    """Prefixes coming back after an idle gap: how many returned, and how many were read, per bucket."""
    returns, reads = [0] * len(GAPS), [0] * len(GAPS)
    for p in points:
        for seconds, read in p.reuse:
            bucket = next(i for i, (_, bound) in enumerate(GAPS) if seconds < bound)
            returns[bucket] += 1
            reads[bucket] += int(read)
    return [
        {"gap": name, "returns": n, "reads": r, "hit_rate": r / n if n else None}
        for (name, _), n, r in zip(GAPS, returns, reads, strict=True)
    ]


def _prefixes(points: list[Point]) -> dict[str, list[dict[str, Any]]]:
    """The prefixes that saved the most (reads against the uncached price) and lost the most (writes that could
    have been reads)."""
    totals: dict[str, dict[str, Any]] = {}
    for p in points:
        if not p.prefix:
            continue
        row = totals.setdefault(p.prefix, {"prefix": p.prefix, "region": p.region, "model": p.model, "calls": 0,
                                           "saved": Decimal(0), "lost": Decimal(0)})  # fmt: skip
        row["calls"] += 1
        row["saved"] += p.uncached_cost - p.cost
        row["lost"] += p.lost
    rows = [row | {"saved": float(row["saved"]), "lost": float(row["lost"])} for row in totals.values()]
    return {
        "saved": sorted((r for r in rows if r["saved"] > 0), key=lambda r: -r["saved"])[:TOP_PREFIXES],
        "lost": sorted((r for r in rows if r["lost"] > 0), key=lambda r: -r["lost"])[:TOP_PREFIXES],
    }


def _bucket(points: list[Point], minutes: list[int]) -> dict[str, list[float | None]]:
    rows: dict[str, list[float | None]] = {
        k: [] for k in ("hit_rate", "read", "write", "uncached", "cost", "savings", "ttft_cached", "ttft_cold")
    }
    for minute in minutes:
        here = [p for p in points if p.minute == minute]
        read, write = sum(p.read for p in here), sum(p.write for p in here)
        rows["hit_rate"].append(read / (read + write) if read + write else None)
        rows["read"].append(read)
        rows["write"].append(write)
        rows["uncached"].append(sum(p.uncached for p in here))
        rows["cost"].append(float(sum((p.cost for p in here), Decimal(0))))
        rows["savings"].append(float(sum((p.uncached_cost - p.cost for p in here), Decimal(0))))
        rows["ttft_cached"].append(_mean([p.ttft_ms for p in here if p.cached and p.ttft_ms is not None]))
        rows["ttft_cold"].append(_mean([p.ttft_ms for p in here if not p.cached and p.ttft_ms is not None]))
    return rows


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None
