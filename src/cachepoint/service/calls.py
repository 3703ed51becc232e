"""The typed values that cross the service boundary: what a handler asks for, and what comes back.

A handler builds one `InvocationRequest` (who, which operation, the model identifier as written, the
raw body and the dialect's decoder) and hands it to the service; the service decodes it off the event
loop, resolves the identifier once into a `Target`, and answers with a `PreparedCall` to run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cachepoint.accounting.usage import Usage
from cachepoint.cache.diagnosis import Diagnosis
from cachepoint.cache.plan import CachePlan
from cachepoint.engine.protocol import Prefilled
from cachepoint.errors import CachepointError
from cachepoint.models.spec import ModelSpec
from cachepoint.prompt.render import RenderedPrompt
from cachepoint.routing.regions import Region
from cachepoint.types import CallContext, Prompt, RegionId, SamplingParams, StopReason


class Surface(StrEnum):
    """How a model identifier is resolved: each surface accepts different identifiers."""

    BEDROCK = "bedrock"  # foundation-model IDs, system and application profiles, ARNs
    BEDROCK_ANTHROPIC = "bedrock-anthropic"  # the same, restricted to models that take an Anthropic body
    COUNTING = "counting"  # CountTokens: foundation-model IDs and ARNs only
    ANTHROPIC = "anthropic"  # /v1: Anthropic's model names (or Bedrock IDs), in the caller's Region


@dataclass(frozen=True)
class OperationFacts:
    surface: Surface
    streaming: bool
    bedrock_logged: bool  # Bedrock's invocation logs know this operation


class Operation(StrEnum):
    CONVERSE = "Converse"
    CONVERSE_STREAM = "ConverseStream"
    INVOKE = "InvokeModel"
    INVOKE_STREAM = "InvokeModelWithResponseStream"
    COUNT_TOKENS = "CountTokens"
    MESSAGES = "Messages"  # /v1/messages; streams or not by its body's `stream`
    BEDROCK_MESSAGES = "AnthropicMessages"  # Bedrock Runtime's /anthropic/v1/messages: Bedrock's models and logs
    COUNT_MESSAGE_TOKENS = "CountMessageTokens"
    COUNT_BEDROCK_MESSAGE_TOKENS = "AnthropicCountTokens"  # /anthropic/v1/messages/count_tokens: Bedrock's IDs

    @property
    def facts(self) -> OperationFacts:
        return OPERATIONS[self]


OPERATIONS: Mapping[Operation, OperationFacts] = {
    Operation.CONVERSE: OperationFacts(Surface.BEDROCK, streaming=False, bedrock_logged=True),
    Operation.CONVERSE_STREAM: OperationFacts(Surface.BEDROCK, streaming=True, bedrock_logged=True),
    Operation.INVOKE: OperationFacts(Surface.BEDROCK_ANTHROPIC, streaming=False, bedrock_logged=True),
    Operation.INVOKE_STREAM: OperationFacts(Surface.BEDROCK_ANTHROPIC, streaming=True, bedrock_logged=True),
    Operation.COUNT_TOKENS: OperationFacts(Surface.COUNTING, streaming=False, bedrock_logged=False),
    Operation.MESSAGES: OperationFacts(Surface.ANTHROPIC, streaming=False, bedrock_logged=False),
    Operation.BEDROCK_MESSAGES: OperationFacts(Surface.BEDROCK_ANTHROPIC, streaming=False, bedrock_logged=True),
    Operation.COUNT_MESSAGE_TOKENS: OperationFacts(Surface.ANTHROPIC, streaming=False, bedrock_logged=False),
    Operation.COUNT_BEDROCK_MESSAGE_TOKENS: OperationFacts(
        Surface.BEDROCK_ANTHROPIC, streaming=False, bedrock_logged=False
    ),
}


@dataclass(frozen=True)
class Decoded:
    """A body decoded and translated to canonical values (in a worker process for large bodies).

    `body` is the JSON as parsed, kept for the invocation log's inputBodyJson. `model` is set when the
    body names the model (/v1); `stream` when the body asks for a stream. `rejected` is set when the JSON
    parsed but failed validation: the service raises it, with the body still there for the log."""

    prompt: Prompt
    sampling: SamplingParams
    body: Any = None
    model: str | None = None
    stream: bool = False
    rejected: CachepointError | None = None
    service_tier: str | None = None  # Converse `serviceTier.type`, echoed in the response
    invoke_body: str = "anthropic"  # InvokeModel: the body family it was written in ("anthropic", "nova")
    diagnose: bool = False  # Anthropic's cache diagnosis was asked for (`diagnostics` in the body)
    previous_message_id: str | None = None  # the turn to compare with (None: a first turn)


Decoder = Callable[[bytes], Decoded]
LogOutput = Callable[["Result"], Any]


@dataclass(frozen=True)
class InvocationRequest:
    ctx: CallContext
    operation: Operation
    model_identifier: str  # as written in the path ('' when the body names it)
    body: bytes
    decode: Decoder  # a module-level function: it may run in another process
    log_output: LogOutput = field(default=lambda result: None)  # the log's outputBodyJson for a result
    request_metadata: Mapping[str, str] | None = None  # InvokeModel's metadata header (Converse's is in the body)
    response_id: str = ""  # the id the response will carry (a later turn's cache diagnosis names it)
    service_tier: str | None = None  # InvokeModel's X-Amzn-Bedrock-Service-Tier (Converse's is in the body)


@dataclass(frozen=True)
class Target:
    """A model identifier resolved once: the catalog row, where it may run, and how it is billed."""

    identifier: str  # as invoked: the ModelId of logs and metrics
    spec: ModelSpec
    destinations: tuple[Region, ...]
    price_factor: Decimal = Decimal(1)
    tags: Mapping[str, str] = field(default_factory=dict)
    lifecycle: str = ""  # '' while the model is active, else `x-cachepoint-lifecycle` (LEGACY; end-of-life=…)
    service_tier: str = ""  # the tier it is billed at: the one asked for if the model offers it, else default


@dataclass(frozen=True)
class PreparedCall:
    request: InvocationRequest
    decoded: Decoded
    target: Target
    rendered: RenderedPrompt
    sampling: SamplingParams
    started_s: float  # wall clock, for the log's timestamp
    started_perf_s: float  # monotonic, for latencies

    @property
    def ctx(self) -> CallContext:
        return self.request.ctx

    @property
    def spec(self) -> ModelSpec:
        return self.target.spec

    @property
    def streaming(self) -> bool:
        return self.request.operation.facts.streaming or self.decoded.stream

    @property
    def had_checkpoint(self) -> bool:
        """The client marked a checkpoint (implicit caching's own marker does not count)."""
        return any(b.checkpoint is not None and not b.checkpoint.implicit for b in self.rendered.boundaries)


@dataclass(frozen=True)
class Result:
    text: str
    stop_reason: StopReason
    stop_sequence: str | None
    usage: Usage
    latency_ms: int
    first_token_ms: int | None
    plan: CachePlan
    inference_region: RegionId
    spec: ModelSpec
    prefill: Prefilled | None = None
    replica: str = ""
    service_tier: str | None = None
    lifecycle: str = ""  # the target's lifecycle notice ('' while active)
    diagnosis: Diagnosis | None = None  # when the call asked for a cache diagnosis

    @property
    def physical(self) -> str | None:
        """Where the engine's physical reuse parted from Bedrock's accounting, which stays the planner's.

        `read-recomputed`: a Bedrock read whose KV the engine no longer held (vLLM evicts on memory
        pressure, never on a TTL), so it was computed again. `reused-without-read`: no Bedrock read, but the
        engine reused KV it still held (blocks Bedrock's TTL would have expired, or another checkpoint's)."""
        if self.prefill is None or self.prefill.engine_cached_tokens is None:
            return None
        cached, read = self.prefill.engine_cached_tokens, self.usage.cache_read_tokens
        if read and read - cached > PHYSICAL_SLACK_TOKENS:
            return "read-recomputed"
        if not read and cached > PHYSICAL_SLACK_TOKENS:
            return "reused-without-read"
        return None


PHYSICAL_SLACK_TOKENS = 128  # vLLM reuses whole KV blocks: a read may reuse up to a block less than it reads


@dataclass(frozen=True)
class Started:
    """The cache plan is made and generation is queued: the prompt side of the usage is final."""

    prompt_usage: Usage
    plan: CachePlan
    inference_region: RegionId
    replica: str = ""  # the engine replica serving the call ("embedded", "node://…", "vllm://…")
    lifecycle: str = ""  # the target's lifecycle notice ('' while active)
    diagnosis: Diagnosis | None = None  # when the call asked for a cache diagnosis


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Completed:
    result: Result


ServiceEvent = Started | TextDelta | Completed
