"""The engine replicas that serve one Region for one model, and what the gateway knows of each.

`holder` is what the replica's snapshots say about where their bytes are: "" for replicas in this process
(any of them can restore what another wrote), the replica's own name for a `cachepoint node`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachepoint.engine.protocol import Runner


@dataclass
class Replica:
    name: str  # "embedded", "node://HOST:PORT", "vllm://HOST:PORT"
    runner: Runner
    holder: str = ""
    up: bool = True
    remote_load: int = 0  # jobs on it from every gateway, as its last health check said
    cached_bytes: int = 0
    num_snapshots: int = 0
    checked_at_s: float | None = None
    failures: int = 0  # consecutive failed health checks
    down_reason: str = ""

    @property
    def load(self) -> int:
        return max(self.runner.num_jobs, self.remote_load)

    @property
    def remote(self) -> bool:
        return bool(self.holder)

    def restores(self, holder: str) -> bool:
        """Whether this replica can restore a snapshot whose bytes `holder` holds."""
        return holder == self.holder
