"""Where an engine's physical reuse parts from Bedrock's accounting (vLLM keeps its own cache)."""

from __future__ import annotations

import pytest

from cachepoint.accounting.usage import Usage
from cachepoint.cache.plan import CachePlan
from cachepoint.engine.protocol import Prefilled
from cachepoint.models.catalog import Catalog
from cachepoint.service.calls import Result
from cachepoint.types import RegionId, StopReason

SPEC = next(iter(Catalog.packaged()))


def result(read: int, engine_cached: int | None) -> Result:
    usage = Usage(input_tokens=10, output_tokens=1, cache_read_tokens=read, cache_write_5m_tokens=0,
                  cache_write_1h_tokens=0, had_checkpoint=True)  # fmt: skip
    prefill = Prefilled((), 10, 0.1, engine_cached_tokens=engine_cached)
    return Result("x", StopReason.END_TURN, None, usage, 1, 1, CachePlan(), RegionId("us-east-1"), SPEC, prefill)


@pytest.mark.parametrize(
    ("read", "engine_cached", "physical"),
    [
        (1070, 1070, None),  # llama.cpp: what was read was restored
        (1070, 1024, None),  # vLLM reuses whole blocks: up to a block less is the same reuse
        (1070, 0, "read-recomputed"),  # vLLM had evicted what Bedrock's rules still held
        (0, 1024, "reused-without-read"),  # vLLM still held what Bedrock's TTL expired
        (0, 64, None),  # a shared template opener, below a block: not worth a word
        (1070, None, None),  # an engine that does not say
    ],
)
def test_physical_divergence(read: int, engine_cached: int | None, physical: str | None) -> None:
    assert result(read, engine_cached).physical == physical
