"""Builds a Region's remote replicas from their names: `node://HOST:PORT` and `vllm://HOST:PORT`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cachepoint.cluster.client import node_replica
from cachepoint.engine.protocol import TokenSource
from cachepoint.routing.pool import RemoteFactory
from cachepoint.routing.replicas import Replica
from cachepoint.settings import EngineSettings


def remote_factory(secret: str | None, log_dir: Path) -> RemoteFactory:
    def build(name: str, engine: EngineSettings, tokenizer: TokenSource) -> Replica:
        if name.startswith("node://"):
            if secret is None:
                raise ValueError(f"replica {name}: node replicas need [cluster] secret (shared with the nodes)")
            return node_replica(name, engine.name, tokenizer, secret, engine.request_timeout_s)
        if engine.kind != "vllm":
            raise ValueError(f'replica {name}: vllm:// replicas serve engines of kind = "vllm", not {engine.kind!r}')
        from cachepoint.engine.vllm import VllmBackend

        url = "http://" + name.removeprefix("vllm://")
        attached = replace(engine, url=url, managed=False)
        backend = VllmBackend(attached, log_dir / f"vllm-{engine.name}.log", holder=name)
        return Replica(name, backend.runner(f"{engine.name}@{name}"), holder=name)

    return build
