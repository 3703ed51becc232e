"""A cluster of separate processes: Redis (the cache directory) and PostgreSQL (profiles), both started by
scripts/services.sh, two gateways (`cachepoint serve`) and two replicas (`cachepoint node`) serving the US
Regions, each node in a network namespace of its own (a host at its own address), driven with boto3. The fake engine (the cluster, not the model, is under test: test_node_model.py
runs a node on the real model); a restore of the wrong prefix fails the fake engine's job.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import boto3
import httpx
import pytest
from botocore.config import Config

from tests.e2e.test_dashboard import CHROMIUM, browse
from tests.live import free_port
from tests.netns import Host, own_host
from tests.process import ServerProcess, start, stop

SECRET = "cluster-secret-for-tests-0123456789"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
PROFILE = f"us.{SONNET}"
SCATTERED = "us.anthropic.claude-sonnet-4-6"  # routed with the `bedrock` policy
US = ("us-east-1", "us-east-2", "us-west-2")
SYSTEM = "You translate novels chapter by chapter, keeping every name. " * 24  # ~1,400 fake tokens


@dataclass
class Cluster:
    root: Path
    redis_port: int
    postgres_url: str
    node_ports: dict[str, int]
    hosts: dict[str, Host]
    nodes: dict[str, ServerProcess] = field(default_factory=dict)
    gateways: list[ServerProcess] = field(default_factory=list)

    def node_config(self, name: str) -> str:
        return f'[engines.default]\nkind = "fake"\n[cluster]\nsecret = "{SECRET}"\nname = "{name}"\n'

    def gateway_config(self, name: str) -> str:
        replicas = ", ".join(f'"node://{self.hosts[n].address}:{port}"' for n, port in self.node_ports.items())
        regions = "".join(f"[regions.{r}]\nreplicas = [{replicas}]\n" for r in US)
        return (
            f'[engines.default]\nkind = "fake"\n'
            f'[cache]\ndirectory = "redis://127.0.0.1:{self.redis_port}/0"\n'
            f'[state]\nurl = "{self.postgres_url}"\n'
            f'[cluster]\nsecret = "{SECRET}"\nname = "{name}"\nhealth_interval_s = 0.5\n'
            f'[logging]\nfsync = false\n[routing.profiles]\n"{SCATTERED}" = "bedrock"\n' + regions
        )

    def start_node(self, name: str) -> ServerProcess:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        host = self.hosts[name]
        self.nodes[name] = start(folder, self.node_config(name), command="node", port=self.node_ports[name],
                                 host=host.address, wrapper=host.wrapper)  # fmt: skip
        return self.nodes[name]

    def redis(self, *args: str) -> str:
        env = os.environ | {"CACHEPOINT_REDIS_PORT": str(self.redis_port), "CACHEPOINT_SERVICES": str(self.root)}
        done = subprocess.run(["bash", "scripts/services.sh", *args], capture_output=True, text=True, env=env,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop_redis(self) -> None:
        pid = int((self.root / "redis" / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("State:\tZ")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Cluster]:
    import psycopg

    root = tmp_path_factory.mktemp("cluster")
    database = f"cluster_{os.getpid()}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {database}")
    url = postgres_server.rsplit("/", 1)[0] + "/" + database
    with ExitStack() as hosts:
        names = ("node-a", "node-b")
        own = {name: hosts.enter_context(own_host(i)) for i, name in enumerate(names)}
        made = Cluster(root, free_port(), url, {name: free_port() for name in names}, own)
        yield from _running(made)


def _running(made: Cluster) -> Iterator[Cluster]:
    root = made.root
    made.redis("redis")  # a Redis of this test's own: the test kills it
    try:
        for name in made.node_ports:
            made.start_node(name)
        for name in ("gw-1", "gw-2"):
            (root / name).mkdir()
            made.gateways.append(start(root / name, made.gateway_config(name)))
        _wait_all_up(made)
        yield made
    finally:
        for process in [*made.gateways, *made.nodes.values()]:
            stop(process)
        if (root / "redis" / "redis.pid").exists():
            made.stop_redis()


def _wait_all_up(cluster: Cluster, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        views = [httpx.get(f"{g.url}/cachepoint/cluster", timeout=5).json() for g in cluster.gateways]
        states = [r["up"] for v in views for per_engine in v["regions"].values() for rs in per_engine.values()
                  for r in rs if r["name"].startswith("node://")]  # fmt: skip
        if states and all(states):
            return
        time.sleep(0.2)
    raise AssertionError("the nodes did not come up in every gateway's view")


def _replica_states(gateway: ServerProcess, name: str) -> list[bool]:
    view = httpx.get(f"{gateway.url}/cachepoint/cluster", timeout=5).json()
    return [r["up"] for engines in view["regions"].values() for rs in engines.values() for r in rs if r["name"] == name]


def runtime(server: ServerProcess) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="AKIDCLUSTER", aws_secret_access_key="x",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))  # fmt: skip


def converse(server: ServerProcess, model: str, system: str = SYSTEM, question: str = "Chapter 1") -> dict[str, Any]:
    answer = runtime(server).converse(
        modelId=model,
        system=[{"text": system}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"maxTokens": 8, "temperature": 0},
    )
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    return {
        "usage": answer["usage"],
        "text": answer["output"]["message"]["content"][0]["text"],
        "cache": headers["x-cachepoint-cache"],
        "replica": headers["x-cachepoint-replica"],
        "region": headers["x-amzn-bedrock-inference-region"],
        "prefill": headers.get("x-cachepoint-prefill", ""),
    }


def evaluated(prefill: str) -> int:
    return int(dict(part.split("=") for part in prefill.split(";"))["evaluated"])


def test_a_write_through_one_gateway_is_read_through_the_other_on_the_holding_node(cluster: Cluster) -> None:
    one, two = cluster.gateways
    system = SYSTEM + "Book one."
    written = converse(one, PROFILE, system)
    read = converse(two, PROFILE, system)

    tokens = written["usage"]["cacheWriteInputTokens"]
    assert tokens > 1024 and written["cache"] == f"written:{tokens}:5m:new"
    assert read["usage"]["cacheReadInputTokens"] == tokens and read["usage"]["cacheWriteInputTokens"] == 0
    assert read["cache"] == f"hit:{tokens}:5m:ram"
    assert (read["replica"], read["region"]) == (written["replica"], written["region"])
    assert read["replica"].startswith("node://") and read["text"] == written["text"]
    assert evaluated(read["prefill"]) == read["usage"]["inputTokens"]  # the node restored the prefix


def test_a_cache_diagnosis_names_a_turn_answered_by_the_other_gateway(cluster: Cluster) -> None:
    """The turns live in the cluster's Redis: gateway two compares with what gateway one answered."""
    one, two = cluster.gateways
    clients = [anthropic.Anthropic(base_url=g.url, api_key="sk-cluster-diag", max_retries=0) for g in (one, two)]

    def create(client: anthropic.Anthropic, system: str, previous: str | None) -> Any:
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=3, messages=[{"role": "user", "content": "Q1?"}],
                                      system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                                      diagnostics={"previous_message_id": previous})  # fmt: skip

    first = create(clients[0], SYSTEM + "Diagnosed.", None)
    assert first.diagnostics is None and first.usage.cache_creation_input_tokens > 1024
    again = create(clients[1], SYSTEM + "Diagnosed.", first.id)
    assert again.diagnostics is None and again.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    changed = create(clients[0], SYSTEM + "Changed.", again.id)
    reason = changed.diagnostics.cache_miss_reason
    assert reason.type == "system_changed" and reason.cache_missed_input_tokens == first.usage.cache_creation_input_tokens


def test_an_application_profile_made_through_one_gateway_is_used_through_the_other(cluster: Cluster) -> None:
    one, two = cluster.gateways
    control = boto3.client("bedrock", endpoint_url=one.url, region_name="us-east-1", aws_access_key_id="AKIDCLUSTER",
                           aws_secret_access_key="x")  # fmt: skip
    arn = control.create_inference_profile(
        inferenceProfileName="team-cluster", modelSource={"copyFrom": f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"}
    )["inferenceProfileArn"]
    first = converse(two, arn, SYSTEM + "Book two.")
    assert first["usage"]["cacheWriteInputTokens"] > 1024 and first["region"] == "us-east-1"


def test_affinity_keeps_a_profile_hitting_and_bedrock_routing_scatters_it(cluster: Cluster) -> None:
    one, two = cluster.gateways
    affine = [converse((one, two)[i % 2], PROFILE, SYSTEM + "Book three.", f"Chapter {i}") for i in range(8)]
    assert [a["cache"].split(":")[0] for a in affine] == ["written"] + ["hit"] * 7
    assert len({a["region"] for a in affine}) == 1 and len({a["replica"] for a in affine}) == 1

    scattered = [converse((one, two)[i % 2], SCATTERED, SYSTEM + "Book four.", f"Chapter {i}") for i in range(12)]
    assert len({s["region"] for s in scattered}) > 1
    assert sum(s["cache"].startswith("written") for s in scattered) > 1  # each new Region writes the prefix again


def log_records(cluster: Cluster) -> list[dict[str, Any]]:
    records = []
    for gateway in cluster.gateways:
        for path in sorted((gateway.state_dir / "logs").rglob("*.json.gz")):
            if "/data/" not in str(path):
                records += [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
    return records


def test_killing_the_holding_node_moves_the_call_to_the_other_as_a_replica_lost_write(cluster: Cluster) -> None:
    one, two = cluster.gateways
    system = SYSTEM + "Book five."
    before = len(log_records(cluster))
    written = converse(one, PROFILE, system)
    holder = next(name for name, port in cluster.node_ports.items() if written["replica"].endswith(f":{port}"))
    cluster.nodes[holder].process.send_signal(signal.SIGKILL)
    cluster.nodes[holder].process.wait()
    try:
        moved = converse(two, PROFILE, system)  # at once: the gateway may not have noticed yet
        tokens = written["usage"]["cacheWriteInputTokens"]
        assert moved["replica"] != written["replica"] and moved["region"] == written["region"]
        assert moved["cache"] == f"written:{tokens}:5m:replica-lost"
        assert moved["usage"]["cacheWriteInputTokens"] == tokens and moved["usage"]["cacheReadInputTokens"] == 0
        again = converse(one, PROFILE, system)
        assert again["cache"] == f"hit:{tokens}:5m:ram" and again["replica"] == moved["replica"]
        deadline = time.monotonic() + 10
        while len(log_records(cluster)) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(log_records(cluster)) == before + 3  # every call logged, none lost with the node
        deadline = time.monotonic() + 5
        while any(_replica_states(one, written["replica"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_replica_states(one, written["replica"])), "health checks mark a dead node down in seconds"
    finally:
        cluster.start_node(holder)
        _wait_all_up(cluster)


def test_without_redis_the_gateways_prefill_cold_and_recover_when_it_is_back(cluster: Cluster) -> None:
    one, two = cluster.gateways
    system = SYSTEM + "Book six."
    converse(one, PROFILE, system)
    cluster.stop_redis()
    try:
        cold = [converse(g, PROFILE, system) for g in (one, two)]
        tokens = cold[0]["usage"]["cacheWriteInputTokens"]
        assert [c["cache"] for c in cold] == [f"written:{tokens}:5m:directory-down"] * 2
        assert "cache directory unreachable" in one.stderr()
    finally:
        cluster.redis("redis")
    again = [converse(g, PROFILE, system + "Again.") for g in (one, two)]
    assert [a["cache"].split(":")[0] for a in again] == ["written", "hit"]
    assert "cache directory reachable again" in one.stderr()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/ensure-chromium.sh")
def test_the_dashboard_shows_each_regions_replicas(cluster: Cluster, tmp_path: Path) -> None:
    dom = browse(f"{cluster.gateways[0].url}/dashboard", tmp_path / "profile", "--dump-dom").stdout
    for name, port in cluster.node_ports.items():
        address = cluster.hosts[name].address
        row = f'<tr data-replica="node://{address}:{port}" data-up="true"><td>us-east-2</td><td>default</td>'
        assert row in dom
    assert '<tr data-replica="embedded" data-up="true"><td>eu-west-1</td>' in dom
