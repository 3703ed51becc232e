"""The node's internal API in process, on the fake engine: the secret, hostile jobs, snapshots kept and
restored by reference, and a lost or foreign snapshot refused before anything runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from cachepoint.cluster.node import NodeEngines, create_node_app
from cachepoint.cluster.snapshots import NodeSnapshots
from cachepoint.cluster.wire import GENERATE, HEALTH, event_from_wire, job_to_wire
from cachepoint.engine.fake import FakeEngine
from cachepoint.engine.protocol import Finished, GenerateJob, Prefilled, Snapshot
from cachepoint.engine.worker import EngineWorker
from cachepoint.types import SamplingParams

SECRET = "node-api-secret-0123456789"
AUTH = {"authorization": f"Bearer {SECRET}"}
PROMPT = tuple(range(10, 410))


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(context_tokens=4096)


@pytest.fixture
def node(engine: FakeEngine) -> Iterator[TestClient]:
    engines = NodeEngines("n1", {"default": EngineWorker(engine, name="default@node")}, {"default": "fp"},
                          NodeSnapshots(10**8))  # fmt: skip
    with TestClient(create_node_app(engines, SECRET)) as client:
        yield client


def generate(node: TestClient, job: GenerateJob, headers: dict[str, str] = AUTH) -> list[Any]:
    response = node.post(GENERATE, json=job_to_wire("default", job), headers=headers)
    assert response.status_code == 200, response.text
    return [event_from_wire(json.loads(line), "node://n1") for line in response.text.splitlines()]


def test_nothing_is_served_without_the_secret(node: TestClient) -> None:
    job = job_to_wire("default", GenerateJob(PROMPT, SamplingParams(max_tokens=2)))
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": SECRET}):
        assert node.get(HEALTH, headers=headers).status_code == 401
        assert node.post(GENERATE, json=job, headers=headers).json()["error"]["kind"] == "unauthorized"


def test_a_snapshot_stays_on_the_node_and_is_restored_by_reference(node: TestClient, engine: FakeEngine) -> None:
    first = generate(node, GenerateJob(PROMPT, SamplingParams(max_tokens=3), capture_at=(300,)))
    prefilled = first[0]
    assert isinstance(prefilled, Prefilled) and isinstance(first[-1], Finished)
    (marker,) = prefilled.snapshots
    assert (marker.data, marker.holder, marker.num_tokens, marker.num_bytes) == (b"", "node://n1", 300, 1200)

    again = generate(node, GenerateJob(PROMPT, SamplingParams(max_tokens=3), marker, 300))
    assert isinstance(again[0], Prefilled) and again[0].num_evaluated_tokens == 100
    assert engine.jobs[-1].restore is not None and engine.jobs[-1].restore.num_tokens == 300  # the node's bytes
    assert again[1:] == first[1:]  # the same answer from the restored prefix
    assert node.get(HEALTH, headers=AUTH).json() == {
        "node": "n1", "load": 0, "snapshots": 1, "cached_bytes": 1200, "engines": {"default": "fp"}
    }


def test_a_lost_or_foreign_snapshot_is_refused_before_the_engine_runs(node: TestClient, engine: FakeEngine) -> None:
    generate(node, GenerateJob(PROMPT, SamplingParams(max_tokens=1), capture_at=(300,)))
    runs = len(engine.jobs)
    lost = Snapshot(b"", 300, 1200, holder="node://n1", ref="999")
    response = node.post(GENERATE, json=job_to_wire("default", GenerateJob(PROMPT, SamplingParams(), lost, 300)),
                         headers=AUTH)  # fmt: skip
    assert (response.status_code, response.json()["error"]["kind"]) == (409, "snapshot-lost")
    other = tuple(range(20, 420))
    kept = Snapshot(b"", 300, 1200, holder="node://n1", ref="1")
    response = node.post(GENERATE, json=job_to_wire("default", GenerateJob(other, SamplingParams(), kept, 300)),
                         headers=AUTH)  # fmt: skip
    assert (response.status_code, response.json()["error"]["kind"]) == (409, "token-mismatch")
    assert len(engine.jobs) == runs


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"engine": "default"},
        {"engine": "default", "tokens": "abc", "sampling": {}},
        {"engine": "default", "tokens": [1, -2], "sampling": {}},
        {"engine": "default", "tokens": [1, 2**40], "sampling": {}},
        {"engine": "default", "tokens": [True], "sampling": {}},
        {"engine": "default", "tokens": [1, 2], "sampling": {"temperature": "hot"}},
        {"engine": "default", "tokens": [1, 2], "sampling": {"stop_sequences": [1]}},
        {"engine": "default", "tokens": [1, 2], "sampling": {}, "capture_at": [5]},
        {"engine": "default", "tokens": [1, 2], "sampling": {}, "restore": {"ref": "1", "tokens": 0}},
        {"engine": "default", "tokens": [1, 2], "sampling": {}, "restore": "x"},
        {"engine": "x" * 300, "tokens": [1, 2], "sampling": {}},
    ],
)
def test_a_malformed_job_is_a_400(node: TestClient, body: Any) -> None:
    response = node.post(GENERATE, json=body, headers=AUTH)
    assert (response.status_code, response.json()["error"]["kind"]) == (400, "bad-job")


def test_unknown_engine_and_oversized_or_broken_bodies(node: TestClient) -> None:
    job = job_to_wire("default", GenerateJob(PROMPT, SamplingParams(max_tokens=1))) | {"engine": "other"}
    assert node.post(GENERATE, json=job, headers=AUTH).status_code == 404
    assert node.post(GENERATE, content=b"{not json", headers=AUTH).status_code == 400
    assert node.post(GENERATE, content=b"[" * (17 << 20), headers=AUTH).status_code == 400
