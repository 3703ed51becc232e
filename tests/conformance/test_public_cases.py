"""The public conformance cases (shared/fixtures/public-cases.json) replayed on the cache core.

Token-level cases are rebuilt as synthetic prompts: one block per checkpoint segment (named after the
case's block description, so "document A" and "document B" differ), then the uncached tail. Steps run
on a fake clock at their `t_offset_s`; the expected usage fields are asserted exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cachepoint.accounting.usage import Usage, anthropic_usage, converse_usage
from cachepoint.cache.plan import CacheScope
from cachepoint.clock import FakeClock
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import parse_model_identifier
from cachepoint.types import AccountId, RegionId, Ttl
from tests.shared_directory import CacheFactory
from tests.cachekit import rendered, run

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
CASES = (
    {c["id"]: c for c in json.loads((FIXTURES / "public-cases.json").read_text())["cases"]} if FIXTURES.exists() else {}
)
TOKEN_CASES = [
    "aws-blog-37209-write-then-read",
    "aws-blog-1038-read-37888-write",
    "aws-blog-converse-1898-write-then-read",
    "below-minimum-silent",
    "below-minimum-boundary-sonnet-4-6-apr-2026",
    "novel-translation-same-region-write-then-read",
    "novel-translation-region-change-rewrite",
    "novel-translation-ap-northeast-2",
]
pytestmark = pytest.mark.skipif(not CASES, reason="shared fixtures not present beside the repo")


def base_model(model_field: str) -> str:
    return parse_model_identifier(model_field.split(" ")[0]).model_id


def catalog_for(case: dict[str, Any]) -> Catalog:
    overrides = (case.get("config") or {}).get("min_tokens", {})
    return Catalog.packaged({"models": {m: {"min_tokens": n} for m, n in overrides.items()}})


def disabled_regions(case: dict[str, Any]) -> set[str]:
    regions = (case.get("config") or {}).get("regions", {})
    return {r for r, row in regions.items() if not all(row.get("prompt_caching_enabled", {}).values())}


def step_prompt(step: dict[str, Any], steps: dict[str, dict[str, Any]], label: str) -> Any:
    request = step["request"]
    source = steps.get(request.get("same_prefix_as") or request.get("same_as") or "", {}).get("request", {})
    checkpoints = request.get("checkpoints") or source["checkpoints"]
    names = request.get("blocks") or source.get("blocks") or [c.get("after", "block") for c in checkpoints]
    blocks, marks, previous = [], {}, 0
    for i, checkpoint in enumerate(checkpoints):
        blocks.append((names[i], checkpoint["cumulative_tokens"] - previous))
        marks[i] = Ttl(checkpoint.get("ttl", "5m"))
        previous = checkpoint["cumulative_tokens"]
    uncached = _uncached(step, source)
    tail_name = label if "same_as" not in request else request["same_as"]
    return rendered(blocks + [(f"question {tail_name}", uncached)] if uncached else blocks, marks, tail=0)


def _uncached(step: dict[str, Any], source: dict[str, Any]) -> int:
    """The tail size: stated by the step; else the identical request's; else (a new question on the same
    prefix) the published uncached count, since the tail is never cached."""
    request = step["request"]
    if "uncached_tokens_after_last_checkpoint" in request:
        return int(request["uncached_tokens_after_last_checkpoint"])
    if "same_as" in request:
        return int(source.get("uncached_tokens_after_last_checkpoint", 0))
    expected = step["expected"]
    return int(expected.get("log", {}).get("inputTokenCount", expected.get("usage_converse", {}).get("inputTokens", 0)))


@pytest.mark.parametrize("case_id", TOKEN_CASES)
def test_token_level_case(case_id: str, new_cache: CacheFactory) -> None:
    case = CASES[case_id]
    catalog, clock = catalog_for(case), FakeClock()
    spec = catalog.get(base_model(case["model_id"]))
    assert spec is not None and spec.caching is not None
    cache = new_cache(clock, 10**10)
    steps = {s.get("label", ""): s for s in case["steps"]}
    elapsed = 0.0
    for step in case["steps"]:
        clock.tick(step.get("t_offset_s", elapsed) - elapsed)
        elapsed = step.get("t_offset_s", elapsed)
        region = step.get("inference_region", "us-east-1")
        scope = CacheScope(
            AccountId("123456789012"), RegionId(region), spec.model_id, region not in disabled_regions(case)
        )
        prompt = step_prompt(step, steps, step.get("label", ""))
        plan = run(cache, prompt, spec.caching, scope)
        write = plan.write_5m_tokens + plan.write_1h_tokens
        usage = Usage(
            prompt.num_tokens - plan.read_tokens - write,
            0,
            plan.read_tokens,
            plan.write_5m_tokens,
            plan.write_1h_tokens,
            True,
        )
        assert_expected(step["expected"], usage)


def assert_expected(expected: dict[str, Any], usage: Usage) -> None:
    fields = expected.get("assert_fields")
    if "usage_converse" in expected:
        want = expected["usage_converse"]
        got = converse_usage(usage)
        for key in fields or [k for k in want if k not in ("outputTokens", "totalTokens")]:
            assert got[key] == want[key], key
    if "usage_anthropic" in expected:
        want = expected["usage_anthropic"]
        got = anthropic_usage(usage, with_cache_creation=False)
        for key in fields or [k for k in want if k != "output_tokens"]:
            assert got[key] == want[key], key
    if "log" in expected:
        want = expected["log"]
        got = {
            "inputTokenCount": usage.input_tokens,
            "cacheReadInputTokenCount": usage.cache_read_tokens,
            "cacheWriteInputTokenCount": usage.cache_write_tokens,
        }
        assert got == want


def test_lookback_case_by_block_positions(new_cache: CacheFactory) -> None:
    case = CASES["anthropic-lookback-20-blocks"]
    spec = Catalog.packaged().get("anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert spec is not None and spec.caching is not None
    for branch in (case["steps"][:3], case["steps"][:2] + case["steps"][3:]):
        cache = new_cache(FakeClock(), 10**10)
        for step in branch:
            total, marks = step["request"]["blocks_total"], step["request"]["breakpoints_at"]
            prompt = rendered([(f"b{i}", 110) for i in range(total)], {m - 1: Ttl.FIVE_MINUTES for m in marks})
            plan = run(cache, prompt, spec.caching)
            assert plan.read_tokens == 110 * step["expected"]["read_up_to_block"], step["label"]
            assert plan.capture_at == tuple(110 * b for b in step["expected"]["write_entry_at"][-1:])


@pytest.mark.parametrize("label", ["query 2", "query 3", "query 4"])
def test_smartsheet_usage_arithmetic(label: str) -> None:
    step = next(s for s in CASES["aws-blog-smartsheet-total-tokens"]["steps"] if s["label"] == label)
    want = step["expected"]["usage_converse"]
    usage = Usage(
        want["inputTokens"], want["outputTokens"], want["cacheReadInputTokens"], want["cacheWriteInputTokens"], 0, True
    )
    assert converse_usage(usage)["totalTokens"] == want["totalTokens"]


def test_anthropic_usage_sum() -> None:
    want = CASES["anthropic-usage-sum"]["steps"][0]["expected"]
    u = want["usage_anthropic"]
    usage = Usage(u["input_tokens"], 0, u["cache_read_input_tokens"], u["cache_creation_input_tokens"])
    assert usage.prompt_tokens == want["total_input_tokens"]
    assert anthropic_usage(usage, with_cache_creation=False)["input_tokens"] == u["input_tokens"]


def test_every_case_is_covered_somewhere() -> None:
    covered = set(TOKEN_CASES) | {
        "anthropic-lookback-20-blocks",
        "aws-blog-smartsheet-total-tokens",
        "anthropic-usage-sum",
    }
    elsewhere = {  # error-message cases: tests/unit/test_checkpoints.py, tests/unit/test_models.py, tests/e2e
        "five-checkpoints-error",
        "ttl-1h-after-5m-error",
        "nothing-to-cache-error",
        "cachepoint-after-reasoning-error",
        "unsupported-model-checkpoint-error",
        "nova-tools-cachepoint-error",
        "on-demand-throughput-not-supported",
        "anthropic-prewarm-max-tokens-0",  # tests/e2e/test_streaming.py, through the anthropic SDK
    }
    assert set(CASES) <= covered | elsewhere, sorted(set(CASES) - covered - elsewhere)
    assert all(re.match(r"^[a-z0-9-]+$", case_id) for case_id in CASES)
