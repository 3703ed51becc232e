"""Build synthetic rendered prompts from block sizes, for exact tests of the cache core."""

from __future__ import annotations

from collections.abc import Sequence

from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import CachePlan, CacheScope
from cachepoint.engine.fake import encode_snapshot
from cachepoint.engine.protocol import Prefilled
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.render import Boundary, RenderedPrompt
from cachepoint.types import AccountId, Checkpoint, RegionId, Section, Ttl


def rendered(blocks: Sequence[tuple[str, int]], checkpoints: dict[int, Ttl], tail: int = 25) -> RenderedPrompt:
    """`blocks` = (content name, size); equal names give equal tokens. `checkpoints`: block index → TTL."""
    tokens: list[int] = []
    boundaries = []
    for index, (name, size) in enumerate(blocks):
        tokens += [hash(name) % 50_000 + 3] * size
        ttl = checkpoints.get(index)
        checkpoint = Checkpoint(ttl, f"messages.0.content.{index}") if ttl else None
        boundaries.append(Boundary(index, len(tokens), Section.MESSAGES, checkpoint))
    tokens += [1] * tail
    return RenderedPrompt(tuple(tokens), tuple(boundaries))


def scope(account: str = "111122223333", region: str = "us-east-1", model: str = "m") -> CacheScope:
    return CacheScope(AccountId(account), RegionId(region), model)


def run(cache: PrefixCache, prompt: RenderedPrompt, rules: CachingRules, where: CacheScope | None = None) -> CachePlan:
    """plan → (engine captures) → commit → release, as the service does."""
    plan = cache.plan(where or scope(), prompt, rules)
    cache.commit(plan, captured(prompt, plan))
    cache.release(plan)
    cache.index.check_integrity()
    return plan


def captured(prompt: RenderedPrompt, plan: CachePlan) -> Prefilled:
    """What an engine reports after prefilling `prompt` under `plan`: a snapshot per capture offset."""
    snapshots = tuple(encode_snapshot(prompt.tokens[:t]) for t in plan.capture_at)
    return Prefilled(snapshots, prompt.num_tokens - plan.restore_tokens, 0.0)


def counts(plan: CachePlan, prompt: RenderedPrompt) -> tuple[int, int, int]:
    """(read, write, uncached input) as the usage would report them."""
    write = plan.write_5m_tokens + plan.write_1h_tokens
    return plan.read_tokens, write, prompt.num_tokens - plan.read_tokens - write
