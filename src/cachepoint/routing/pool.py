"""Engines per Region: each Region gets its own runner (engine and queue) for each engine name, so load
in one Region is real and independent of another's. `start` builds them all before the server listens:
a model load is seconds of work that must not land on the event loop under the first request."""

from __future__ import annotations

from collections.abc import Iterable

from cachepoint.engine.backend import Backend
from cachepoint.engine.protocol import Runner, TokenSource
from cachepoint.prompt.template import ChatTemplate
from cachepoint.settings import EngineSettings
from cachepoint.types import RegionId


class EnginePool:
    """All Regions' runners of one engine name (one model). `tokenizer` serves them all: same model."""

    def __init__(
        self, settings: EngineSettings, template: ChatTemplate, backend: Backend, fingerprint: str = ""
    ) -> None:
        self.settings = settings
        self.template = template
        self.fingerprint = fingerprint  # what a snapshot must have been made by to be restored here
        self._backend = backend
        self._runners: dict[RegionId, Runner] = {}

    def start(self, regions: Iterable[RegionId]) -> None:
        for region in regions:
            self.worker(region)

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def tokenizer(self) -> TokenSource:
        return self._backend.tokenizer

    @property
    def max_token_bytes(self) -> int:
        return self.tokenizer.max_token_bytes

    def worker(self, region: RegionId) -> Runner:
        """The Region's runner; one is built here only for a Region that `start` was not given."""
        runner = self._runners.get(region)
        if runner is None:
            runner = self._runners[region] = self._backend.runner(f"{self.settings.name}@{region}")
        return runner

    def load(self, region: RegionId) -> int:
        runner = self._runners.get(region)
        return runner.num_jobs if runner else 0

    def workers(self) -> dict[RegionId, Runner]:
        return dict(self._runners)

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._backend.close()
