"""Whether reading a snapshot from disk pays, from running figures (pure; the cache feeds it).

A disk hit costs reading the file plus importing the KV into the engine; recomputing costs prefilling the
same tokens. Both rates are exponentially weighted means of what was measured on this machine, per engine
fingerprint for the engine's own rates. Until a rate has been measured the disk is assumed to pay: a
restore is never slower than a cold prefill by more than the one measurement that teaches the rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WEIGHT = 0.3  # of the newest measurement in each running mean
MIN_MEASURED_S = 0.002  # shorter timings are mostly noise: not learned from


@dataclass
class Rate:
    per_s: float | None = None

    def observe(self, amount: float, seconds: float) -> None:
        if amount <= 0 or seconds < MIN_MEASURED_S:
            return
        rate = amount / seconds
        self.per_s = rate if self.per_s is None else (1 - WEIGHT) * self.per_s + WEIGHT * rate

    def seconds(self, amount: float) -> float | None:
        return None if self.per_s is None else amount / self.per_s


@dataclass
class RestoreCosts:
    disk_read: Rate = field(default_factory=Rate)  # bytes per second, file to memory, checksum included
    imports: dict[str, Rate] = field(default_factory=dict)  # per engine: snapshot bytes imported per second
    prefills: dict[str, Rate] = field(default_factory=dict)  # per engine: prompt tokens computed per second

    def observe_prefill(self, engine: str, num_tokens: int, compute_s: float) -> None:
        self.prefills.setdefault(engine, Rate()).observe(num_tokens, compute_s)

    def observe_import(self, engine: str, num_bytes: int, seconds: float) -> None:
        self.imports.setdefault(engine, Rate()).observe(num_bytes, seconds)

    def disk_pays(self, engine: str, num_bytes: int, num_tokens: int) -> bool:
        """Whether reading `num_bytes` from disk and importing them beats computing `num_tokens` again."""
        recompute = self.prefills.get(engine, Rate()).seconds(num_tokens)
        read = self.disk_read.seconds(num_bytes)
        if recompute is None or read is None:
            return True
        return read + (self.imports.get(engine, Rate()).seconds(num_bytes) or 0.0) < recompute

    def as_dict(self) -> dict[str, object]:
        return {
            "disk_read_bytes_per_s": self.disk_read.per_s,
            "import_bytes_per_s": {k: r.per_s for k, r in self.imports.items()},
            "prefill_tokens_per_s": {k: r.per_s for k, r in self.prefills.items()},
        }
