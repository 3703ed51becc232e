"""Implicit caching on the cache core: where the implicit marker goes, and that its write is captured but never
billed while a read through it is."""

from __future__ import annotations

from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import Outcome
from cachepoint.clock import FakeClock
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.implicit import IMPLICIT, with_implicit_checkpoint
from cachepoint.prompt.render import Boundary, RenderedPrompt
from cachepoint.types import Checkpoint, Section, Ttl
from tests.cachekit import counts, rendered, run

SONNET = Catalog.packaged().get("anthropic.claude-sonnet-4-6").caching  # type: ignore[union-attr]
NOVA_FIELDS = (Section.SYSTEM, Section.MESSAGES)


def sections(*kinds: Section) -> RenderedPrompt:
    return RenderedPrompt(tuple(range(10 * len(kinds))), tuple(Boundary(i, 10 * (i + 1), s, None)
                                                                for i, s in enumerate(kinds)))  # fmt: skip


def test_the_marker_goes_on_the_last_block_of_a_field_the_model_caches() -> None:
    prompt = sections(Section.TOOLS, Section.SYSTEM, Section.MESSAGES, Section.MESSAGES)
    marked = with_implicit_checkpoint(prompt, NOVA_FIELDS)
    assert [b.checkpoint for b in marked.boundaries] == [None, None, None, IMPLICIT]
    tools_only = sections(Section.TOOLS)
    assert with_implicit_checkpoint(tools_only, NOVA_FIELDS) is tools_only  # Nova caches no tools


def test_a_client_marker_leaves_the_prompt_alone() -> None:
    prompt = sections(Section.SYSTEM, Section.MESSAGES)
    explicit = Checkpoint(Ttl.FIVE_MINUTES, "system.0")
    marked = RenderedPrompt(prompt.tokens, (prompt.boundaries[0].__class__(0, 10, Section.SYSTEM, explicit),
                                            prompt.boundaries[1]))  # fmt: skip
    assert with_implicit_checkpoint(marked, NOVA_FIELDS) is marked


def test_implicit_writes_are_captured_unbilled_and_reads_through_them_are_billed() -> None:
    cache = PrefixCache(FakeClock(), budget_bytes=10**9)
    blocks = [("doc", 1500), ("q1", 10)]
    prompt = with_implicit_checkpoint(rendered(blocks, {}), (Section.MESSAGES,))
    first = run(cache, prompt, SONNET)
    assert counts(first, prompt) == (0, 0, prompt.num_tokens)  # no write billed
    assert first.capture_at == (1510,) and first.reports[0].compact() == "written:1510:implicit:new"
    second = run(cache, prompt, SONNET)
    assert counts(second, prompt) == (1510, 0, prompt.num_tokens - 1510)
    assert second.reports[0].outcome is Outcome.HIT and second.reports[0].ttl == "implicit"


def test_an_implicit_marker_below_the_minimum_reports_nothing() -> None:
    cache = PrefixCache(FakeClock(), budget_bytes=10**9)
    short = with_implicit_checkpoint(rendered([("hi", 20)], {}), (Section.MESSAGES,))
    plan = run(cache, short, SONNET)
    assert plan.reports == () and plan.capture_at == ()
