"""Engines per Region: each Region gets its own engine and queue for each engine name, so load in one
Region is real and independent of another's. `start` builds them all before the server listens: a
model load is seconds of work that must not land on the event loop under the first request."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cachepoint.engine.protocol import Engine
from cachepoint.engine.worker import EngineWorker
from cachepoint.prompt.template import ChatTemplate
from cachepoint.settings import EngineSettings
from cachepoint.types import RegionId

EngineFactory = Callable[[EngineSettings], Engine]


class EnginePool:
    """All Regions' engines of one engine name (one model). `tokenizer` is any of them: same model."""

    def __init__(self, settings: EngineSettings, template: ChatTemplate, factory: EngineFactory) -> None:
        self.settings = settings
        self.template = template
        self._factory = factory
        self._workers: dict[RegionId, EngineWorker] = {}
        self._tokenizer: Engine | None = None

    def start(self, regions: Iterable[RegionId]) -> None:
        for region in regions:
            self._add(region)

    @property
    def tokenizer(self) -> Engine:
        if self._tokenizer is None:
            self._tokenizer = (
                next(iter(self._workers.values())).engine if self._workers else self._factory(self.settings)
            )
        return self._tokenizer

    @property
    def max_token_bytes(self) -> int:
        return self.tokenizer.max_token_bytes

    def worker(self, region: RegionId) -> EngineWorker:
        """The Region's worker; one is built here only for a Region that `start` was not given."""
        return self._workers.get(region) or self._add(region)

    def _add(self, region: RegionId) -> EngineWorker:
        if region in self._workers:
            return self._workers[region]
        engine = self._take_tokenizer_engine() or self._factory(self.settings)
        worker = EngineWorker(
            engine, name=f"{self.settings.name}@{region}", max_queued_jobs=self.settings.max_queued_jobs
        )
        self._workers[region] = worker
        return worker

    def load(self, region: RegionId) -> int:
        worker = self._workers.get(region)
        return worker.num_jobs if worker else 0

    def workers(self) -> dict[RegionId, EngineWorker]:
        return dict(self._workers)

    def _take_tokenizer_engine(self) -> Engine | None:
        """The engine built for tokenising becomes the first Region's engine instead of a spare copy."""
        used = {id(w.engine) for w in self._workers.values()}
        if self._tokenizer is not None and id(self._tokenizer) not in used:
            return self._tokenizer
        return None

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
