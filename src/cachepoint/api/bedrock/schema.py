"""Converse / ConverseStream / CountTokens request shapes (botocore's bedrock-runtime model).

Content blocks stay plain dicts here: they are a tagged union with one key each, which the
translator reads member by member, so an unknown member gets a precise message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MessageIn(_Wire):
    role: Literal["user", "assistant", "system"]
    content: list[dict[str, Any]]


class ServiceTierIn(_Wire):
    type: Literal["priority", "default", "flex", "reserved"]


class ToolConfigIn(_Wire):
    tools: list[dict[str, Any]] = Field(min_length=1)
    toolChoice: dict[str, Any] | None = None


class InferenceConfigIn(_Wire):
    maxTokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=1)
    topP: float | None = Field(default=None, ge=0, le=1)
    stopSequences: list[str] = Field(default_factory=list, max_length=2500)


class ConverseRequest(_Wire):
    messages: list[MessageIn]
    system: list[dict[str, Any]] | None = None
    toolConfig: ToolConfigIn | None = None
    inferenceConfig: InferenceConfigIn | None = None
    additionalModelRequestFields: dict[str, Any] | None = None
    requestMetadata: dict[str, str] | None = None
    serviceTier: ServiceTierIn | None = None


class ConverseInput(_Wire):
    messages: list[MessageIn]
    system: list[dict[str, Any]] | None = None
    toolConfig: ToolConfigIn | None = None
    additionalModelRequestFields: dict[str, Any] | None = None


class NovaInferenceIn(_Wire):
    """Nova's native inferenceConfig: Nova 2 spells maxTokens/topP/topK, Nova 1 max_new_tokens/top_p/top_k."""

    maxTokens: int | None = Field(default=None, ge=1)
    max_new_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=1)
    topP: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    topK: int | None = Field(default=None, ge=0)
    top_k: int | None = Field(default=None, ge=0)
    stopSequences: list[str] = Field(default_factory=list, max_length=4)


class NovaInvokeBody(_Wire):
    """Nova's native InvokeModel body (`schemaVersion` "messages-v1"): Converse's messages, system and tools."""

    schemaVersion: str | None = None
    messages: list[MessageIn]
    system: list[dict[str, Any]] | None = None
    toolConfig: ToolConfigIn | None = None
    inferenceConfig: NovaInferenceIn | None = None


class InvokeModelInput(_Wire):
    body: str


class CountTokensInput(_Wire):
    converse: ConverseInput | None = None
    invokeModel: InvokeModelInput | None = None


class CountTokensRequest(_Wire):
    input: CountTokensInput
