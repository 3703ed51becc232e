"""`cachepoint node` on the real embedded model: a gateway whose only replica is the node writes a prefix
there and reads it back, the node restoring the snapshot it kept (the bytes never leave it), with the same
greedy answer as the write. Separate processes, boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cluster import SECRET, converse, evaluated
from tests.live import free_port
from tests.process import ServerProcess, start, stop

OTHER_REGIONS = ("us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-northeast-2",
                 "ap-southeast-1", "ap-southeast-2")  # fmt: skip
SYSTEM = "You are a meticulous literary translator who keeps every name and idiom intact. " * 90


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("node-model")
    port = free_port()
    (root / "node").mkdir()
    (root / "gateway").mkdir()
    node = start(root / "node", f'[cluster]\nsecret = "{SECRET}"\n', command="node", port=port)
    down = "".join(f"[regions.{r}]\ndown = true\n" for r in OTHER_REGIONS)
    config = f'[cluster]\nsecret = "{SECRET}"\n[regions.us-east-1]\nreplicas = ["node://127.0.0.1:{port}"]\n' + down
    try:
        server = start(root / "gateway", config)
        try:
            yield server
        finally:
            stop(server)
    finally:
        stop(node)


def test_the_node_restores_its_own_snapshot_on_the_real_model(gateway: ServerProcess) -> None:
    written = converse(gateway, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", SYSTEM)
    read = converse(gateway, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", SYSTEM)

    tokens = written["usage"]["cacheWriteInputTokens"]
    assert tokens > 1024 and written["cache"] == f"written:{tokens}:5m:new", written
    assert read["cache"] == f"hit:{tokens}:5m:ram" and read["usage"]["cacheReadInputTokens"] == tokens
    assert written["replica"] == read["replica"] and read["replica"].startswith("node://")
    assert evaluated(written["prefill"]) == tokens + written["usage"]["inputTokens"]
    assert evaluated(read["prefill"]) == read["usage"]["inputTokens"]  # only the suffix was computed
    assert read["text"] == written["text"]
