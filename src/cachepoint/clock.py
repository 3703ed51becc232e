"""Time as a dependency: the cache core reads "now" from a Clock it is given, once per operation."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_s(self) -> float: ...


class SystemClock:
    """Wall-clock seconds; TTLs outlive process restarts only if the clock is the wall clock."""

    def now_s(self) -> float:
        return time.time()


class FakeClock:
    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self._now_s = start_s

    def now_s(self) -> float:
        return self._now_s

    def tick(self, seconds: float) -> None:
        self._now_s += seconds
