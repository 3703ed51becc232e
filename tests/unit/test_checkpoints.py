"""Checkpoint validation through the real translators, with Bedrock's exact messages."""

from typing import Any

import pytest

from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.anthropic.schema import InvokeBody
from cachepoint.api.bedrock import translate as converse
from cachepoint.api.bedrock.schema import ConverseRequest
from cachepoint.errors import AccessDeniedError, ProviderValidationError, ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.checkpoints import effective_ttl, validate_checkpoints
from cachepoint.types import Ttl

CATALOG = Catalog.packaged()
SONNET_45 = CATALOG.get("anthropic.claude-sonnet-4-5-20250929-v1:0")
SONNET_37 = CATALOG.get("anthropic.claude-3-7-sonnet-20250219-v1:0")
NOVA = CATALOG.get("amazon.nova-pro-v1:0")
LLAMA = CATALOG.get("meta.llama3-3-70b-instruct-v1:0")
CP = {"cachePoint": {"type": "default"}}
CP_1H = {"cachePoint": {"type": "default", "ttl": "1h"}}


def converse_prompt(**body: Any):  # type: ignore[no-untyped-def]
    body.setdefault("messages", [{"role": "user", "content": [{"text": "q"}]}])
    return converse.to_prompt(ConverseRequest.model_validate(body))


def test_checkpoint_attaches_to_previous_block_with_anthropic_path() -> None:
    prompt = converse_prompt(messages=[{"role": "user", "content": [{"text": "doc"}, CP, {"text": "q"}]}])
    ((section, checkpoint),) = prompt.checkpoints()
    assert checkpoint.path == "messages.0.content.0" and checkpoint.wire_path == "messages/0/content/1"
    assert [b.text for b in prompt.messages[0].blocks] == ["doc", "q"]


def test_five_checkpoints_is_the_documented_error() -> None:
    prompt = converse_prompt(
        system=[{"text": "a"}, CP, {"text": "b"}, CP],
        messages=[{"role": "user", "content": [{"text": "c"}, CP, {"text": "d"}, CP, {"text": "e"}, CP]}],
    )
    with pytest.raises(ProviderValidationError) as info:
        validate_checkpoints(prompt, SONNET_45.caching)
    assert info.value.bedrock_message == (
        "The model returned the following errors: A maximum of 4 blocks with cache_control may be provided. Found 5."
    )
    assert info.value.anthropic_message == "A maximum of 4 blocks with cache_control may be provided. Found 5."


def test_one_hour_after_five_minutes_names_the_offending_block() -> None:
    body = InvokeBody.model_validate(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "d", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
                },
            ],
        }
    )
    with pytest.raises(ProviderValidationError) as info:
        validate_checkpoints(anthropic.to_prompt(body), SONNET_45.caching)
    assert info.value.bedrock_message == (
        "The model returned the following errors: messages.3.content.0.cache_control.ttl: a ttl='1h' cache_control "
        "block must not come after a ttl='5m' cache_control block. Note that blocks are processed in the following "
        "order: `tools`, `system`, `messages`."
    )


def test_converse_ttl_path_counts_blocks_without_markers() -> None:
    prompt = converse_prompt(messages=[{"role": "user", "content": [{"text": "a"}, CP, {"text": "b"}, CP_1H]}])
    with pytest.raises(ProviderValidationError, match=r"messages\.0\.content\.1\.cache_control\.ttl"):
        validate_checkpoints(prompt, SONNET_45.caching)


@pytest.mark.parametrize("content", [[CP, {"text": "q"}], [{"text": "q"}, CP, CP]])
def test_nothing_to_cache(content: list[dict[str, Any]]) -> None:
    with pytest.raises(
        ValidationError,
        match="^There is nothing available to cache. Please remove the invalid cache point and try again.$",
    ):
        converse_prompt(messages=[{"role": "user", "content": content}])


def test_checkpoint_after_reasoning() -> None:
    messages = [
        {"role": "user", "content": [{"text": "q"}]},
        {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "hmm"}}}, CP]},
        {"role": "user", "content": [{"text": "q2"}]},
    ]
    with pytest.raises(ValidationError, match="^Cache point cannot be inserted after reasoning block."):
        converse_prompt(messages=messages)


def test_model_without_caching_is_denied() -> None:
    prompt = converse_prompt(system=[{"text": "s"}, CP])
    with pytest.raises(
        AccessDeniedError, match="You invoked an unsupported model or your request did not allow prompt caching."
    ):
        validate_checkpoints(prompt, LLAMA.caching)
    validate_checkpoints(converse_prompt(), LLAMA.caching)  # no marker: fine


def test_nova_rejects_tool_checkpoints_with_the_raw_index() -> None:
    tools = [{"toolSpec": {"name": f"t{i}", "inputSchema": {"json": {}}}} for i in range(5)] + [CP]
    prompt = converse_prompt(toolConfig={"tools": tools})
    with pytest.raises(ValidationError) as info:
        validate_checkpoints(prompt, NOVA.caching)
    assert info.value.message == (
        "Malformed input request: #/toolConfig/tools/5: extraneous key [cachePoint] is not permitted, please reformat your input"
    )


def test_bad_ttl_value_is_an_enum_error() -> None:
    with pytest.raises(ValidationError, match=r"Value '2h' at 'system\.1\.cachePoint\.ttl'.*\[5m, 1h\]"):
        converse_prompt(system=[{"text": "s"}, {"cachePoint": {"type": "default", "ttl": "2h"}}])


def test_unsupported_ttl_is_downgraded() -> None:
    assert effective_ttl(Ttl.ONE_HOUR, SONNET_37.caching) is Ttl.FIVE_MINUTES
    assert effective_ttl(Ttl.ONE_HOUR, SONNET_45.caching) is Ttl.ONE_HOUR
