"""The two TTL policies where sources differ, set per caching family in the catalog: a TTL the model does not
offer (downgraded to 5m, or refused) and a 1h checkpoint over a live 5m entry (read, or written again at 1h)."""

from __future__ import annotations

import pytest

from cachepoint.cache.manager import PrefixCache
from cachepoint.clock import FakeClock
from cachepoint.errors import ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.checkpoints import validate_checkpoints
from cachepoint.types import Block, BlockKind, Checkpoint, Prompt, Ttl
from tests.cachekit import rendered, run

OPUS_41 = "anthropic.claude-opus-4-1-20250805-v1:0"  # 5m only
SONNET_46 = "anthropic.claude-sonnet-4-6"  # 5m and 1h


def rules(model: str, **family: object) -> CachingRules:
    spec = Catalog.packaged({"caching": {"claude": family}} if family else None).get(model)
    assert spec is not None and spec.caching is not None
    return spec.caching


def one_hour_prompt() -> Prompt:
    return Prompt(system=(Block(BlockKind.TEXT, "doc", Checkpoint(Ttl.ONE_HOUR, "system.0")),))


def test_an_unoffered_ttl_is_downgraded_by_default_and_refused_on_request() -> None:
    validate_checkpoints(one_hour_prompt(), rules(OPUS_41))
    strict = rules(OPUS_41, on_unsupported_ttl="reject")
    with pytest.raises(ValidationError, match=r"^The cache TTL 1h at system.0 is not supported by this model. "
                                              r"Supported TTLs: 5m.$"):  # fmt: skip
        validate_checkpoints(one_hour_prompt(), strict)
    validate_checkpoints(one_hour_prompt(), rules(SONNET_46, on_unsupported_ttl="reject"))


@pytest.mark.parametrize(("policy", "read", "written_1h"), [("reuse", 2000, 500), ("rewrite", 0, 2500)])
def test_a_one_hour_checkpoint_over_a_five_minute_entry(policy: str, read: int, written_1h: int) -> None:
    cache = PrefixCache(FakeClock(), budget_bytes=10**9)
    family = rules(SONNET_46, ttl_reads=policy)
    run(cache, rendered([("doc", 2000)], {0: Ttl.FIVE_MINUTES}), family)
    plan = run(cache, rendered([("doc", 2000), ("more", 500)], {1: Ttl.ONE_HOUR}), family)
    assert (plan.read_tokens, plan.write_1h_tokens) == (read, written_1h)


def test_bad_policy_values_are_refused() -> None:
    with pytest.raises(ValueError, match="on_unsupported_ttl must be 'downgrade' or 'reject', not 'ignore'"):
        rules(OPUS_41, on_unsupported_ttl="ignore")
    with pytest.raises(ValueError, match="ttl_reads must be 'reuse' or 'rewrite', not True"):
        rules(OPUS_41, ttl_reads=True)
