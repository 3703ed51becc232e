"""Where a model's Regions get their engines: the `Backend` seam between the pool and the engine kinds.

- `ThreadedBackend`: an in-process engine per Region (llama.cpp, the fake engine), each on its own thread;
- `engine.llamacpp_batched.BatchedBackend` (`slots` > 1): a batched llama.cpp runner per Region;
- `engine.vllm.VllmBackend`: one vLLM server shared by every Region's runner (tenants and Regions kept
  apart by cache salts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cachepoint.engine.protocol import Engine, Runner, TokenSource
from cachepoint.engine.worker import EngineWorker
from cachepoint.settings import EngineSettings

EngineFactory = Callable[[EngineSettings], Engine]


class Backend(Protocol):
    @property
    def tokenizer(self) -> TokenSource: ...

    def runner(self, name: str) -> Runner: ...

    def describe(self) -> dict[str, object]:
        """Facts for the operator's stats page (engine kind, where it runs, its health)."""
        ...

    def close(self) -> None: ...


class ThreadedBackend:
    def __init__(self, settings: EngineSettings, factory: EngineFactory) -> None:
        self.settings = settings
        self._factory = factory
        self._spare: Engine | None = None  # built for tokenizing before any runner; becomes the first runner's
        self._first: Engine | None = None

    @property
    def tokenizer(self) -> TokenSource:
        if self._first is None:
            self._spare = self._first = self._factory(self.settings)
        return self._first

    def runner(self, name: str) -> Runner:
        engine, self._spare = self._spare or self._factory(self.settings), None
        self._first = self._first or engine
        return EngineWorker(engine, name=name, max_queued_jobs=self.settings.max_queued_jobs)

    def describe(self) -> dict[str, object]:
        return {"kind": self.settings.kind, "in_process": True}

    def close(self) -> None:
        pass  # the workers own their engines and are closed by the pool
