"""Engines per Region: each Region gets its own replicas (engine and queue each) for each engine name, so
load in one Region is real and independent of another's. `start` builds them all before the server listens:
a model load is seconds of work that must not land on the event loop under the first request.

A Region's replicas come from its configuration: "embedded" is this engine's own backend (in-process
llama.cpp, the fake engine, or the configured vLLM); "node://…" and "vllm://…" are built by the
`RemoteFactory` the gateway gives (`cluster/`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cachepoint.engine.backend import Backend
from cachepoint.engine.protocol import Runner, TokenSource
from cachepoint.prompt.template import ChatTemplate
from cachepoint.routing.regions import EMBEDDED, Region
from cachepoint.routing.replicas import Replica
from cachepoint.settings import EngineSettings
from cachepoint.types import RegionId

RemoteFactory = Callable[[str, EngineSettings, TokenSource], Replica]


class EnginePool:
    """All Regions' replicas of one engine name (one model). `tokenizer` serves them all: same model."""

    def __init__(
        self,
        settings: EngineSettings,
        template: ChatTemplate,
        backend: Backend,
        fingerprint: str = "",
        remote: RemoteFactory | None = None,
    ) -> None:
        self.settings = settings
        self.template = template
        self.fingerprint = fingerprint  # what a snapshot must have been made by to be restored here
        self._backend = backend
        self._remote = remote
        self._replicas: dict[RegionId, list[Replica]] = {}

    def start(self, regions: Iterable[Region]) -> None:
        for region in regions:
            self._replicas[region.region_id] = [self._build(region.region_id, name) for name in region.replicas]

    def _build(self, region: RegionId, name: str) -> Replica:
        if name == EMBEDDED:
            return Replica(EMBEDDED, self._backend.runner(f"{self.settings.name}@{region}"))
        if self._remote is None:
            raise ValueError(f"replica {name} needs a cluster ([cluster] secret) to be reached")
        return self._remote(name, self.settings, self.tokenizer)

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def tokenizer(self) -> TokenSource:
        return self._backend.tokenizer

    @property
    def max_token_bytes(self) -> int:
        return self.tokenizer.max_token_bytes

    def replicas(self, region: RegionId) -> list[Replica]:
        """The Region's replicas; an embedded one is built here only for a Region that `start` was not given."""
        found = self._replicas.get(region)
        if found is None:
            found = self._replicas[region] = [self._build(region, EMBEDDED)]
        return found

    def worker(self, region: RegionId) -> Runner:
        """The Region's first replica's runner (a Region with one replica has just that one)."""
        return self.replicas(region)[0].runner

    def load(self, region: RegionId) -> int:
        """What a new call would queue behind there: the least loaded live replica's load."""
        live = [r.load for r in self._replicas.get(region, []) if r.up]
        return min(live) if live else 0

    def workers(self) -> dict[RegionId, Runner]:
        return {region: replicas[0].runner for region, replicas in self._replicas.items()}

    def all_replicas(self) -> dict[RegionId, list[Replica]]:
        return {region: list(replicas) for region, replicas in self._replicas.items()}

    def close(self) -> None:
        for replicas in self._replicas.values():
            for replica in replicas:
                replica.runner.close()
        self._backend.close()
