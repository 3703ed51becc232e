"""A Region served by two remote replicas, in process on the fake engine: one that dies (before its first event,
or mid-answer) and a healthy one. The call is answered whole from the healthy one, the dead one is marked
down, and a read it promised is re-planned as a `replica-lost` write."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from cachepoint.api.common import AppServices
from cachepoint.engine.fake import FakeEngine
from cachepoint.engine.protocol import EngineEvent, GenerateJob, Prefilled, ReplicaUnavailable, Snapshot, TokenSource
from cachepoint.engine.worker import EngineWorker
from cachepoint.routing.replicas import Replica
from cachepoint.types import RegionId
from tests.api.wire import Boto

SYSTEM = [{"text": "ledger " * 300}, {"cachePoint": {"type": "default"}}]
MESSAGES = [{"role": "user", "content": [{"text": "q"}]}]
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"


class Remote:
    """A remote replica as the gateway sees one (its snapshots stay with it, named by reference), which dies
    after `after` tokens of a job (-1: before its first event); `after` None: it never dies."""

    def __init__(self, name: str, after: int | None = None) -> None:
        self.name = name
        self.inner = EngineWorker(FakeEngine(), name=name)
        self.after = after
        self.dead = False
        self.kept: dict[str, Snapshot] = {}
        self.jobs: list[GenerateJob] = []

    @property
    def engine(self) -> TokenSource:
        return self.inner.engine

    @property
    def num_jobs(self) -> int:
        return 0

    @property
    def last_prefill(self) -> Prefilled | None:
        return None

    async def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        if self.dead or self.after == -1:
            raise ReplicaUnavailable(self.name, "connection refused")
        self.jobs.append(job)
        if job.restore is not None:
            job = replace(job, restore=self.kept[job.restore.ref])
        tokens = 0
        async for event in self.inner.stream(job):
            if isinstance(event, Prefilled):
                event = replace(event, snapshots=tuple(self._keep(s) for s in event.snapshots))
            if isinstance(event, int):
                if tokens == self.after:
                    self.dead = True
                    raise ReplicaUnavailable(self.name, "connection reset mid-answer")
                tokens += 1
            yield event

    def _keep(self, snapshot: Snapshot) -> Snapshot:
        ref = str(len(self.kept))
        self.kept[ref] = snapshot
        return Snapshot(b"", snapshot.num_tokens, snapshot.num_bytes, holder=self.name, ref=ref)

    def close(self) -> None:
        self.inner.close()


def two_replicas(services: AppServices, after: int | None) -> list[Replica]:
    replicas = services.inference.pools["default"].replicas(RegionId("us-east-1"))
    replicas[:] = [Replica(name, Remote(name, after if name == "node://dying" else None), holder=name)
                   for name in ("node://dying", "node://healthy")]  # fmt: skip
    return replicas


def converse(runtime: Boto) -> tuple[int, dict[str, str], dict[str, object]]:
    response = runtime("Converse", modelId=f"us.{MODEL}", system=SYSTEM, messages=MESSAGES,
                       inferenceConfig={"maxTokens": 8})  # fmt: skip
    return response.status_code, dict(response.headers), response.json()


def test_an_answer_goes_on_from_another_replica_when_its_replica_dies_mid_answer(
    client: TestClient, runtime: Boto, fake_services: AppServices
) -> None:
    dying, healthy = two_replicas(fake_services, after=3)
    status, headers, body = converse(runtime)
    assert status == 200, body
    assert body["usage"]["outputTokens"] == 8 and body["stopReason"] == "max_tokens"  # the whole answer
    assert headers["x-cachepoint-replica"] == "node://dying"  # where the prefix was computed
    assert not dying.up and dying.down_reason.startswith("replica node://dying: connection reset")
    first, then = dying.runner.jobs[-1], healthy.runner.jobs[-1]  # type: ignore[attr-defined]
    assert then.tokens[: len(first.tokens)] == first.tokens and len(then.tokens) == len(first.tokens) + 3
    assert then.sampling.max_tokens == 5 and then.restore is None  # the prompt and 3 tokens in: 5 to go


def test_a_replica_dead_before_its_first_event_costs_a_new_plan_not_an_error(
    client: TestClient, runtime: Boto, fake_services: AppServices
) -> None:
    dying, healthy = two_replicas(fake_services, after=-1)
    status, headers, body = converse(runtime)
    assert status == 200 and headers["x-cachepoint-replica"] == "node://healthy"
    assert not dying.up


def test_a_read_promised_by_a_dead_replica_is_a_replica_lost_write(
    client: TestClient, runtime: Boto, fake_services: AppServices
) -> None:
    dying, healthy = two_replicas(fake_services, after=None)
    status, headers, written = converse(runtime)  # written on the first replica (least loaded, first listed)
    assert headers["x-cachepoint-replica"] == "node://dying" and headers["x-cachepoint-cache"].startswith("written:")
    dying.runner.dead = True  # type: ignore[attr-defined]
    status, headers, body = converse(runtime)
    tokens = written["usage"]["cacheWriteInputTokens"]  # type: ignore[index]
    assert status == 200 and headers["x-cachepoint-replica"] == "node://healthy"
    assert headers["x-cachepoint-cache"] == f"written:{tokens}:5m:replica-lost"
    assert body["usage"]["cacheReadInputTokens"] == 0  # type: ignore[index]


def test_choosing_a_region_then_its_replica_asks_the_cache_once_per_region(
    client: TestClient, runtime: Boto, fake_services: AppServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a shared directory each lookup is a Redis round trip: the chosen Region's is not asked twice."""
    two_replicas(fake_services, after=None)
    cache = fake_services.inference.cache
    asked: list[str] = []
    real = cache.match
    monkeypatch.setattr(cache, "match", lambda scope, *rest: asked.append(str(scope.region)) or real(scope, *rest))
    status, headers, _ = converse(runtime)
    assert status == 200 and headers["x-cachepoint-replica"] == "node://dying"
    assert sorted(asked) == ["us-east-1", "us-east-2", "us-west-2"]  # the profile's three Regions, once each
