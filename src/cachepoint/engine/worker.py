"""One engine, one job at a time, in arrival order, off the event loop, which only awaits.

The thread that runs jobs exists only while there are jobs: llama.cpp's OpenMP keeps a thread team for
every thread that has ever decoded, for as long as that thread lives, and on 2 cores each idle team left
behind by another Region's engine cut every decode to about 40% of its speed (measured).

`stream(job)` is an async iterator over the engine's events. Leaving it early (a stop sequence, a
client that disconnected) sets `job.cancel`, which the engine checks between tokens, so the engine is
free again within one token. A job cancelled while still queued never starts.

`JobCount` and `EventChannel` are shared with the batched engine (`llamacpp_batched.py`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from cachepoint.engine.protocol import Engine, EngineEvent, GenerateJob, Prefilled
from cachepoint.errors import ModelError, ServiceUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_DONE = object()


class JobCount:
    """Jobs queued or running, bounded: `admit` refuses at once beyond the bound. Thread-safe."""

    def __init__(self, max_jobs: int) -> None:
        self._max_jobs = max_jobs
        self._lock = threading.Lock()
        self.value = 0

    def admit(self) -> None:
        with self._lock:
            if self.value >= self._max_jobs:
                raise ServiceUnavailableError("The engine queue is full. Try your request again later.")
            self.value += 1

    def release(self) -> None:
        with self._lock:
            self.value -= 1


class EventChannel:
    """One job's events, from an engine thread to the asyncio task that made the channel. The thread calls
    `put`, then `fail` or nothing, then `close` (each thread-safe and non-blocking); the task awaits `next`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    def put(self, event: EngineEvent) -> None:
        self._send(event)

    def fail(self, error: BaseException) -> None:
        self._send(_Failed(error))

    def close(self) -> None:
        self._send(_DONE)

    async def next(self) -> EngineEvent | None:
        """The next event; None once the channel is closed. An engine failure is raised as a ModelError."""
        item = await self._queue.get()
        if isinstance(item, _Failed):
            log.error("engine %s failed", self._name, exc_info=item.error)
            raise ModelError("The model failed to process the request.") from item.error
        return None if item is _DONE else item  # type: ignore[return-value]

    def _send(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop closed while we ran (shutdown); nobody is listening any more
            pass


class EngineWorker:
    def __init__(self, engine: Engine, *, name: str, max_queued_jobs: int = 64) -> None:
        self.engine = engine
        self.name = name
        self._jobs = JobCount(max_queued_jobs)
        self._queue: deque[tuple[GenerateJob, EventChannel]] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # runs while the queue is not empty, then exits
        self._closed = False
        self.last_prefill: Prefilled | None = None  # timings of the latest prefill, for stats and benchmarks

    @property
    def num_jobs(self) -> int:
        """Jobs queued or running: the load figure routing looks at."""
        return self._jobs.value

    async def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        self._jobs.admit()
        channel = EventChannel(self.name)
        self._enqueue(job, channel)
        async with aclosing(relay(channel, job, self)) as events:  # closed at once: a cancel is not left to GC
            async for event in events:
                yield event

    def _enqueue(self, job: GenerateJob, channel: EventChannel) -> None:
        with self._lock:
            if self._closed:
                self._jobs.release()
                raise ServiceUnavailableError("The engine is shutting down.")
            self._queue.append((job, channel))
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name=f"engine-{self.name}", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                job, channel = self._queue.popleft()
            self._work(job, channel)

    def _work(self, job: GenerateJob, channel: EventChannel) -> None:
        try:
            if not job.cancel.is_set():
                for event in self.engine.run(job):
                    channel.put(event)
        except BaseException as error:  # the boundary: every engine failure reaches the caller
            channel.fail(error)
        finally:
            self._jobs.release()
            channel.close()

    def close(self) -> None:
        """Refuses new jobs, cancels queued ones and waits for the running one."""
        with self._lock:
            self._closed = True
            for job, _ in self._queue:
                job.cancel.set()
            thread = self._thread
        if thread is not None:
            thread.join()


class _Observed(Protocol):
    last_prefill: Prefilled | None


async def relay(channel: EventChannel, job: GenerateJob, runner: _Observed) -> AsyncGenerator[EngineEvent, None]:
    """A job's events as its engine thread puts them; the runner keeps the latest prefill's figures. A caller
    that stops early (a client gone) cancels the job, so the engine stops working for nobody."""
    try:
        while (event := await channel.next()) is not None:
            if isinstance(event, Prefilled):
                runner.last_prefill = event
            yield event
    finally:
        job.cancel.set()
