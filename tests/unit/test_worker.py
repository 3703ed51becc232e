"""The engine worker: jobs run one at a time; a full queue is refused at once; cancelled jobs never start."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from cachepoint.engine.fake import FakeEngine
from cachepoint.engine.protocol import EngineEvent, GenerateJob
from cachepoint.engine.worker import EngineWorker
from cachepoint.errors import ModelError, ServiceUnavailableError
from cachepoint.types import SamplingParams


class GatedEngine(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def run(self, job: GenerateJob) -> Iterator[EngineEvent]:
        self.gate.wait(5)
        yield from super().run(job)


def job() -> GenerateJob:
    return GenerateJob((5, 6, 7), SamplingParams(max_tokens=3))


async def drain(worker: EngineWorker, j: GenerateJob) -> list[EngineEvent]:
    return [event async for event in worker.stream(j)]


def test_a_full_queue_is_refused_immediately() -> None:
    async def scenario() -> None:
        engine = GatedEngine()
        worker = EngineWorker(engine, name="t", max_queued_jobs=2)
        running = [asyncio.ensure_future(drain(worker, job())) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert worker.num_jobs == 2
        with pytest.raises(ServiceUnavailableError):
            await drain(worker, job())
        engine.gate.set()
        results = await asyncio.gather(*running)
        assert all(len(r) == 5 for r in results)  # Prefilled, 3 tokens, Finished
        assert worker.num_jobs == 0
        worker.close()

    asyncio.run(scenario())


def test_engine_failures_become_model_errors_and_the_worker_goes_on() -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        worker = EngineWorker(engine, name="t")
        engine.fail_next = RuntimeError("boom")
        with pytest.raises(ModelError):
            await drain(worker, job())
        assert len(await drain(worker, job())) == 5
        worker.close()

    asyncio.run(scenario())


def test_a_job_cancelled_while_queued_never_runs() -> None:
    async def scenario() -> None:
        engine = GatedEngine()
        worker = EngineWorker(engine, name="t")
        first = asyncio.ensure_future(drain(worker, job()))
        await asyncio.sleep(0.05)
        cancelled = job()
        cancelled.cancel.set()
        second = asyncio.ensure_future(drain(worker, cancelled))
        engine.gate.set()
        await first
        assert await second == []
        assert len(engine.jobs) == 1
        worker.close()

    asyncio.run(scenario())
