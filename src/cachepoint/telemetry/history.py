"""A bounded in-memory history of recent invocations, bucketed per minute for the dashboard."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cachepoint.telemetry.records import Invocation

MAX_POINTS = 20_000


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
        )
        with self._lock:
            self._points.append(point)

    def series(self) -> dict[str, Any]:
        """Per-minute totals, overall and per Region, as plain JSON for the dashboard."""
        with self._lock:
            points = list(self._points)
        minutes = sorted({p.minute for p in points})
        regions = sorted({p.region for p in points})
        return {
            "minutes": [m * 60 for m in minutes],
            "total": _bucket(points, minutes),
            "regions": {r: _bucket([p for p in points if p.region == r], minutes) for r in regions},
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
