"""One thread per engine: jobs run one at a time, in arrival order, and the event loop only awaits.

`stream(job)` is an async iterator over the engine's events. Leaving it early (a stop sequence, a
client that disconnected) sets `job.cancel`, which the engine checks between tokens, so the engine is
free again within one token. A job cancelled while still queued never starts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cachepoint.engine.protocol import Engine, EngineEvent, GenerateJob, Prefilled
from cachepoint.errors import ModelError, ServiceUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_DONE = object()


class EngineWorker:
    def __init__(self, engine: Engine, *, name: str, max_queued_jobs: int = 64) -> None:
        self.engine = engine
        self.name = name
        self._max_queued_jobs = max_queued_jobs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{name}")
        self._lock = threading.Lock()
        self._num_jobs = 0
        self.last_prefill: Prefilled | None = None  # timings of the latest prefill, for stats and benchmarks

    @property
    def num_jobs(self) -> int:
        """Jobs queued or running: the load figure routing looks at."""
        return self._num_jobs

    async def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._executor.submit(self._work, job, loop, queue)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, _Failed):
                    log.error("engine %s failed", self.name, exc_info=item.error)
                    raise ModelError("The model failed to process the request.") from item.error
                if isinstance(item, Prefilled):
                    self.last_prefill = item
                yield item  # type: ignore[misc]
        finally:
            job.cancel.set()

    def _admit(self) -> None:
        with self._lock:
            if self._num_jobs >= self._max_queued_jobs:
                raise ServiceUnavailableError("The engine queue is full. Try your request again later.")
            self._num_jobs += 1

    def _work(self, job: GenerateJob, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object]) -> None:
        try:
            if not job.cancel.is_set():
                for event in self.engine.run(job):
                    _put(loop, queue, event)
        except BaseException as error:  # the boundary: every engine failure reaches the caller
            _put(loop, queue, _Failed(error))
        finally:
            with self._lock:
                self._num_jobs -= 1
            _put(loop, queue, _DONE)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _put(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object], item: object) -> None:
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:  # the loop closed while we ran (shutdown); nobody is listening any more
        pass
