"""Property tests: the cache core keeps its invariants under random operation sequences, and the request
translators turn any JSON into either a canonical prompt or one of our own errors, never anything else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.anthropic.schema import InvokeBody
from cachepoint.api.bedrock import translate as converse
from cachepoint.api.bedrock.schema import ConverseRequest
from cachepoint.api.decoding import parse
from cachepoint.api.validation import coral_message, json_schema_message
from cachepoint.cache.manager import PrefixCache
from cachepoint.clock import FakeClock
from cachepoint.errors import CachepointError
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.checkpoints import validate_checkpoints
from cachepoint.types import Ttl
from tests.cachekit import rendered, run, scope

RULES = Catalog.packaged().get("anthropic.claude-sonnet-4-5-20250929-v1:0").caching  # type: ignore[union-attr]

request_shapes = st.tuples(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 900)), min_size=1, max_size=8),  # blocks
    st.dictionaries(st.integers(0, 7), st.sampled_from([Ttl.FIVE_MINUTES, Ttl.ONE_HOUR]), max_size=4),  # checkpoints
    st.sampled_from(["111111111111", "222222222222"]),
    st.sampled_from(["us-east-1", "eu-west-1"]),
    st.integers(0, 700),  # seconds to wait first
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(request_shapes, min_size=1, max_size=12), budget=st.integers(4_000, 40_000))
def test_cache_core_invariants(steps: list[Any], budget: int) -> None:
    clock = FakeClock()
    cache = PrefixCache(clock, budget_bytes=budget)
    for blocks, marks, account, region, wait in steps:
        clock.tick(wait)
        marks = {i: ttl for i, ttl in marks.items() if i < len(blocks)}
        prompt = rendered(blocks, marks)
        plan = run(cache, prompt, RULES, scope(account=account, region=region))  # run() checks integrity
        written = plan.write_5m_tokens + plan.write_1h_tokens
        assert 0 <= plan.read_tokens + written <= prompt.num_tokens
        assert plan.read_tokens == plan.restore_tokens
        assert cache.index.num_bytes <= budget
        ends = [b.end_tokens for b in prompt.boundaries if b.checkpoint]
        assert plan.read_tokens == 0 or plan.read_tokens in [b.end_tokens for b in prompt.boundaries]
        assert written == 0 or plan.read_tokens + written in ends


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70_000) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
block = st.one_of(
    st.fixed_dictionaries({"text": st.text(max_size=20)}),
    st.fixed_dictionaries({"cachePoint": st.fixed_dictionaries({"type": st.sampled_from(["default", "x"])})}),
    st.fixed_dictionaries(
        {"reasoningContent": st.fixed_dictionaries({"reasoningText": st.fixed_dictionaries({"text": st.text()})})}
    ),
    st.fixed_dictionaries(
        {"toolUse": st.fixed_dictionaries({"toolUseId": st.text(), "name": st.text(), "input": json_values})}
    ),
    st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    # every union member, with any JSON inside it (wrong types included)
    st.sampled_from(
        [
            "text",
            "image",
            "document",
            "toolUse",
            "toolResult",
            "reasoningContent",
            "guardContent",
            "cachePoint",
            "toolSpec",
        ]
    ).flatmap(lambda member: st.fixed_dictionaries({member: json_values})),  # fmt: skip
)
converse_bodies = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.lists(block, max_size=4)}
            ),
            max_size=4,
        )
    },
    optional={
        "system": st.lists(block, max_size=3),
        "inferenceConfig": st.dictionaries(
            st.sampled_from(["maxTokens", "temperature", "topP", "stopSequences"]), json_values
        ),
        "toolConfig": st.fixed_dictionaries({"tools": st.lists(block, max_size=3)}),
    },
)


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(converse_bodies, json_values))
def test_converse_translation_never_escapes_the_error_tree(body: Any) -> None:
    try:
        request = parse(ConverseRequest, body, coral_message)
        prompt = converse.to_prompt(request)
        converse.to_sampling(request.inferenceConfig, request.additionalModelRequestFields)
        validate_checkpoints(prompt, RULES)
    except CachepointError:
        pass


anthropic_blocks = st.one_of(
    json_values,
    st.sampled_from(
        ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "nope"]
    ).flatmap(
        lambda kind: st.fixed_dictionaries(
            {"type": st.just(kind)},
            optional={
                k: json_values
                for k in ("text", "source", "content", "cache_control", "input", "id", "tool_use_id", "thinking")
            },
        )
    ),
)
anthropic_bodies = st.fixed_dictionaries(
    {"anthropic_version": st.just("bedrock-2023-05-31"), "max_tokens": st.integers(-1, 10),
     "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]),
                                                 "content": st.one_of(st.text(max_size=5), st.lists(anthropic_blocks, max_size=3))}), max_size=3)},
    optional={"system": st.one_of(st.text(max_size=5), st.lists(anthropic_blocks, max_size=2)), "cache_control": json_values,
              "tools": st.lists(st.fixed_dictionaries({"name": st.text(min_size=1, max_size=4)}, optional={"cache_control": json_values,
                                "input_schema": json_values}), max_size=2)},
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(anthropic_bodies, json_values))
def test_anthropic_translation_never_escapes_the_error_tree(body: Any) -> None:
    try:
        prompt = anthropic.to_prompt(parse(InvokeBody, body, json_schema_message))
        validate_checkpoints(prompt, RULES)
    except CachepointError:
        pass
