from typing import Any

import pytest

from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.anthropic.schema import InvokeBody
from cachepoint.api.bedrock import translate as converse
from cachepoint.api.bedrock.schema import ConverseRequest
from cachepoint.errors import ValidationError
from cachepoint.types import BlockKind, Role


def conv(**body: Any):  # type: ignore[no-untyped-def]
    return converse.to_prompt(ConverseRequest.model_validate(body))


def test_same_content_renders_identically_through_both_dialects() -> None:
    c = conv(
        system=[{"text": "You are terse."}],
        toolConfig={
            "tools": [{"toolSpec": {"name": "add", "description": "adds", "inputSchema": {"json": {"type": "object"}}}}]
        },
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    a = anthropic.to_prompt(
        InvokeBody.model_validate(
            {
                "anthropic_version": "x",
                "max_tokens": 5,
                "system": "You are terse.",
                "tools": [{"name": "add", "description": "adds", "input_schema": {"type": "object"}}],
                "messages": [{"role": "user", "content": "hi"}],
            }
        )
    )
    assert a == c


def test_tool_use_and_result_become_text() -> None:
    prompt = conv(
        messages=[
            {"role": "user", "content": [{"text": "add 1 and 2"}]},
            {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": "add", "input": {"b": 2, "a": 1}}}],
            },
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"sum": 3}}]}}]},
        ]
    )
    assert prompt.messages[1].blocks[0].text == '<tool_call>{"id":"t1","input":{"a":1,"b":2},"name":"add"}</tool_call>'
    assert (
        prompt.messages[2].blocks[0].kind is BlockKind.TOOL_RESULT and '{"sum":3}' in prompt.messages[2].blocks[0].text
    )


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            [],
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ),
        ([{"role": "assistant", "content": [{"text": "x"}]}], "A conversation must start with a user message."),
        (
            [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}],
            "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
        ),
        ([{"role": "user", "content": []}], "The content field in the Message object at messages.0 is empty."),
        (
            [{"role": "user", "content": [{"text": " "}]}],
            "The text field in the ContentBlock object at messages.0.content.0 is blank. Add text to the text field, and try again.",
        ),
    ],
)
def test_converse_conversation_errors(messages: list[Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        conv(messages=messages)
    assert info.value.message.startswith(message)


def test_anthropic_roles_and_empty_text() -> None:
    with pytest.raises(ValidationError, match='first message must use the "user" role'):
        anthropic.to_prompt(
            InvokeBody.model_validate(
                {"anthropic_version": "x", "max_tokens": 1, "messages": [{"role": "assistant", "content": "a"}]}
            )
        )
    with pytest.raises(ValidationError, match="text content blocks must be non-empty"):
        anthropic.to_prompt(
            InvokeBody.model_validate(
                {
                    "anthropic_version": "x",
                    "max_tokens": 1,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}],
                }
            )
        )


def test_sampling_from_converse_inference_config() -> None:
    request = ConverseRequest.model_validate(
        {
            "messages": [{"role": "user", "content": [{"text": "q"}]}],
            "inferenceConfig": {"maxTokens": 7, "temperature": 0, "stopSequences": ["\n"]},
            "additionalModelRequestFields": {"top_k": 5},
        }
    )
    params = converse.to_sampling(request.inferenceConfig, request.additionalModelRequestFields)
    assert (params.max_tokens, params.temperature, params.top_p, params.top_k, params.stop_sequences) == (
        7,
        0,
        1.0,
        5,
        ("\n",),
    )
    assert conv(messages=[{"role": "user", "content": [{"text": "q"}]}]).messages[0].role is Role.USER
