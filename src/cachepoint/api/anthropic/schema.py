"""The Anthropic Messages body: InvokeModel's native body on Bedrock, and /v1/messages.

Bedrock's InvokeModel schema forbids unknown keys (`model`, `stream` among them); /v1/messages
ignores them. Content blocks stay dicts: the translator reads the tagged union by `type`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CacheControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    cache_control: CacheControlIn | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class _Body(BaseModel):
    max_tokens: int
    messages: list[MessageIn]
    system: str | list[dict[str, Any]] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    cache_control: CacheControlIn | None = None


class InvokeBody(_Body):
    model_config = ConfigDict(extra="forbid")
    anthropic_version: str
    anthropic_beta: list[str] | None = None
    max_tokens: int = Field(ge=1)


class DiagnosticsIn(BaseModel):
    """Anthropic's cache diagnosis opt-in: the previous turn's message id, or null on a first turn."""

    model_config = ConfigDict(extra="forbid")
    previous_message_id: str | None = Field(default=None, max_length=128)


class MessagesBody(_Body):
    model_config = ConfigDict(extra="ignore")
    model: str
    stream: bool = False
    max_tokens: int = Field(ge=0)
    diagnostics: DiagnosticsIn | None = None


class CountTokensBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[MessageIn]
    system: str | list[dict[str, Any]] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
