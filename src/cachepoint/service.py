"""The orchestrator: resolve the model → validate → render → cache plan → generate → one Usage.

The API layer calls only this module. Everything that differs between dialects has been translated
away before `prepare`, so Converse, InvokeModel and /v1/messages share every rule and number.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace

from cachepoint.accounting.usage import Usage
from cachepoint.cache.plan import CachePlan, CacheScope, PromptCache
from cachepoint.engine.protocol import Finished, FinishReason, GenerateJob, Prefilled
from cachepoint.engine.textstream import TextStream
from cachepoint.engine.worker import EngineWorker
from cachepoint.errors import InputTooLongError, ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import parse_model_identifier
from cachepoint.models.resolve import resolve_counting_spec, resolve_spec
from cachepoint.models.spec import ModelSpec
from cachepoint.prompt.checkpoints import validate_checkpoints
from cachepoint.prompt.render import RenderedPrompt, render
from cachepoint.prompt.template import ChatTemplate
from cachepoint.types import CallContext, Prompt, SamplingParams, StopReason

DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class EngineSlot:
    worker: EngineWorker
    template: ChatTemplate


@dataclass(frozen=True)
class PreparedCall:
    ctx: CallContext
    model_identifier: str
    spec: ModelSpec
    slot: EngineSlot
    rendered: RenderedPrompt
    sampling: SamplingParams
    had_checkpoint: bool
    started_s: float


@dataclass(frozen=True)
class Result:
    text: str
    stop_reason: StopReason
    stop_sequence: str | None
    usage: Usage
    latency_ms: int
    first_token_ms: int | None
    plan: CachePlan
    prefill: Prefilled | None = None


@dataclass(frozen=True)
class Started:
    """The cache plan is made and generation is queued: the prompt side of the usage is final."""

    prompt_usage: Usage
    plan: CachePlan


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Completed:
    result: Result


ServiceEvent = Started | TextDelta | Completed

_STOP_REASONS = {
    FinishReason.END_OF_TURN: StopReason.END_TURN,
    FinishReason.MAX_TOKENS: StopReason.MAX_TOKENS,
    FinishReason.CONTEXT_FULL: StopReason.CONTEXT_WINDOW_EXCEEDED,
    FinishReason.CANCELLED: StopReason.END_TURN,
}


class InferenceService:
    def __init__(self, catalog: Catalog, slots: Mapping[str, EngineSlot], cache: PromptCache) -> None:
        self.catalog = catalog
        self.slots = dict(slots)
        self.cache = cache

    def prepare(
        self, ctx: CallContext, model_identifier: str, prompt: Prompt, sampling: SamplingParams
    ) -> PreparedCall:
        """A Bedrock call: the identifier is resolved with Bedrock's rules."""
        spec = resolve_spec(parse_model_identifier(model_identifier), self.catalog)
        return self.prepare_for(ctx, model_identifier, spec, prompt, sampling)

    def prepare_for(
        self, ctx: CallContext, model_identifier: str, spec: ModelSpec, prompt: Prompt, sampling: SamplingParams
    ) -> PreparedCall:
        """Validate and render for an already resolved model; every failure here precedes any output."""
        started = time.perf_counter()
        validate_checkpoints(prompt, spec.caching)
        slot = self.slots[spec.engine]
        rendered = render(prompt, slot.template, slot.worker.engine)
        _check_context(rendered, spec, slot)
        sampling = replace(sampling, max_tokens=_max_tokens(sampling, spec))
        return PreparedCall(ctx, model_identifier, spec, slot, rendered, sampling, bool(prompt.checkpoints()), started)

    def count_tokens(self, model_identifier: str, prompt: Prompt) -> int:
        spec = resolve_counting_spec(parse_model_identifier(model_identifier), self.catalog)
        return self.count_tokens_for(spec, prompt)

    def count_tokens_for(self, spec: ModelSpec, prompt: Prompt) -> int:
        slot = self.slots[spec.engine]
        return render(prompt, slot.template, slot.worker.engine).num_tokens

    async def complete(self, call: PreparedCall) -> Result:
        async with aclosing(self.stream(call)) as events:
            async for event in events:
                if isinstance(event, Completed):
                    return event.result
        raise AssertionError("a stream always ends with Completed")

    async def stream(self, call: PreparedCall) -> AsyncIterator[ServiceEvent]:
        scope = CacheScope(call.ctx.account_id, call.ctx.region, call.spec.model_id)
        plan = self.cache.plan(scope, call.rendered, call.spec.caching)
        try:
            yield Started(_usage(call, plan, num_output=0), plan)
            async with aclosing(self._generate(call, plan)) as events:
                async for event in events:
                    yield event
        finally:
            self.cache.release(plan)

    async def _generate(self, call: PreparedCall, plan: CachePlan) -> AsyncIterator[ServiceEvent]:
        job = GenerateJob(
            call.rendered.tokens,
            call.sampling,
            plan.restore,
            plan.restore_tokens if plan.restore else 0,
            plan.capture_at,
        )
        text = TextStream(call.sampling.stop_sequences)
        engine = call.slot.worker.engine
        num_output, finish, first_token_s, prefill = 0, FinishReason.CANCELLED, None, None
        async with aclosing(call.slot.worker.stream(job)) as events:
            async for event in events:
                if isinstance(event, Prefilled):
                    prefill = event
                    self.cache.commit(plan, event.snapshots)
                elif isinstance(event, Finished):
                    finish = event.reason
                else:
                    num_output += 1
                    if delta := text.push(engine.token_bytes(event)):
                        first_token_s = first_token_s or time.perf_counter()
                        yield TextDelta(delta)
                    if text.stop_sequence is not None:
                        break
        if tail := text.finish():
            first_token_s = first_token_s or time.perf_counter()
            yield TextDelta(tail)
        result = _result(call, plan, text, num_output, finish, first_token_s)
        yield Completed(replace(result, prefill=prefill))


def _result(
    call: PreparedCall, plan: CachePlan, text: TextStream, num_output: int, finish: FinishReason, first_s: float | None
) -> Result:
    now = time.perf_counter()
    stop = StopReason.STOP_SEQUENCE if text.stop_sequence is not None else _STOP_REASONS[finish]
    usage = _usage(call, plan, num_output)
    first_ms = None if first_s is None else int((first_s - call.started_s) * 1000)
    return Result(text.text, stop, text.stop_sequence, usage, int((now - call.started_s) * 1000), first_ms, plan)


def _usage(call: PreparedCall, plan: CachePlan, num_output: int) -> Usage:
    cached = plan.read_tokens + plan.write_5m_tokens + plan.write_1h_tokens
    return Usage(
        input_tokens=call.rendered.num_tokens - cached,
        output_tokens=num_output,
        cache_read_tokens=plan.read_tokens,
        cache_write_5m_tokens=plan.write_5m_tokens,
        cache_write_1h_tokens=plan.write_1h_tokens,
        had_checkpoint=call.had_checkpoint,
    )


def _max_tokens(sampling: SamplingParams, spec: ModelSpec) -> int:
    if sampling.max_tokens is None:
        return min(DEFAULT_MAX_TOKENS, spec.max_output_tokens)
    if sampling.max_tokens > spec.max_output_tokens:
        limit = spec.max_output_tokens
        raise ValidationError(
            f"The maximum tokens you requested exceeds the model limit of {limit}. "
            f"Try again with a maximum tokens value that is lower than {limit}."
        )
    return sampling.max_tokens


def _check_context(rendered: RenderedPrompt, spec: ModelSpec, slot: EngineSlot) -> None:
    # The local engine needs one free position to generate; its window is usually the binding limit.
    limit = min(spec.context_window, slot.worker.engine.context_tokens - 1)
    if rendered.num_tokens > limit:
        raise InputTooLongError(rendered.num_tokens, limit)
