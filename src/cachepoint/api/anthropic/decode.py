"""Anthropic Messages API bodies (/v1) → canonical values (run off the event loop; see api/decoding.py)."""

from __future__ import annotations

from typing import Any

from cachepoint.api.anthropic import translate
from cachepoint.api.anthropic.schema import CountTokensBody, MessagesBody
from cachepoint.api.decoding import decoder, parse
from cachepoint.api.validation import anthropic_message
from cachepoint.errors import ValidationError
from cachepoint.service.calls import Decoded
from cachepoint.types import SamplingParams


def _messages(data: Any) -> Decoded:
    body = parse(MessagesBody, data, anthropic_message)
    if body.stream and body.max_tokens == 0:
        raise ValidationError("max_tokens: pre-warming with max_tokens 0 is not available with stream: true")
    prompt = translate.with_automatic_checkpoint(translate.to_prompt(body, merge_turns=True), body.cache_control)
    asked = body.diagnostics is not None
    previous = body.diagnostics.previous_message_id if body.diagnostics else None
    return Decoded(prompt, translate.to_sampling(body), data, model=body.model, stream=body.stream,
                   diagnose=asked, previous_message_id=previous)  # fmt: skip


def _count_tokens(data: Any) -> Decoded:
    body = parse(CountTokensBody, data, anthropic_message)
    return Decoded(translate.to_prompt(body, merge_turns=True), SamplingParams(), data, model=body.model)


messages_body = decoder(_messages)
count_tokens_body = decoder(_count_tokens)
