"""The orchestrator: resolve the model → validate → render → cache plan → generate → one Usage.

The API layer calls only this module. Everything that differs between dialects has been translated
away before `prepare`, so Converse, InvokeModel and /v1/messages share every rule and number.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from cachepoint.accounting.usage import Usage
from cachepoint.cache.plan import CachePlan, CacheScope, PromptCache
from cachepoint.engine.protocol import Finished, FinishReason, GenerateJob, Prefilled
from cachepoint.engine.textstream import TextStream
from cachepoint.errors import InputTooLongError, ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import INVALID_IDENTIFIER, ModelRef, RefKind, parse_model_identifier
from cachepoint.models.resolve import resolve_counting_spec, resolve_spec
from cachepoint.models.spec import ModelSpec
from cachepoint.prompt.checkpoints import validate_checkpoints
from cachepoint.prompt.render import RenderedPrompt, render
from cachepoint.routing.policy import Candidate, LoadGuard, Policy, choose
from cachepoint.routing.pool import EnginePool
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.regions import Region, RegionMap
from cachepoint.types import CallContext, Prompt, RegionId, SamplingParams, StopReason

DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class Routing:
    policy: Policy
    guard: LoadGuard
    rng: random.Random
    per_profile: Mapping[str, Policy] = field(default_factory=dict)

    def policy_for(self, model_identifier: str) -> Policy:
        return self.per_profile.get(model_identifier, self.policy)


@dataclass(frozen=True)
class PreparedCall:
    ctx: CallContext
    model_identifier: str
    spec: ModelSpec
    pool: EnginePool
    destinations: tuple[Region, ...]
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
    inference_region: RegionId
    spec: ModelSpec
    prefill: Prefilled | None = None


@dataclass(frozen=True)
class Started:
    """The cache plan is made and generation is queued: the prompt side of the usage is final."""

    prompt_usage: Usage
    plan: CachePlan
    inference_region: RegionId


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
    def __init__(
        self,
        catalog: Catalog,
        pools: Mapping[str, EnginePool],
        cache: PromptCache,
        regions: RegionMap,
        routing: Routing,
        profiles: ProfileStore,
        max_blocks: int = 10_000,
    ) -> None:
        self.max_blocks = max_blocks
        self.catalog = catalog
        self.pools = dict(pools)
        self.cache = cache
        self.regions = regions
        self.routing = routing
        self.profiles = profiles

    def prepare(
        self, ctx: CallContext, model_identifier: str, prompt: Prompt, sampling: SamplingParams
    ) -> PreparedCall:
        """A Bedrock call: the identifier is resolved with Bedrock's rules, profiles to their Regions."""
        spec, destinations = self._target(ctx, parse_model_identifier(model_identifier))
        return self._prepare(ctx, model_identifier, spec, destinations, prompt, sampling)

    def prepare_for(
        self, ctx: CallContext, model_identifier: str, spec: ModelSpec, prompt: Prompt, sampling: SamplingParams
    ) -> PreparedCall:
        """An already resolved model served in the caller's own Region (the Anthropic API)."""
        return self._prepare(ctx, model_identifier, spec, (self.regions.region(ctx.region),), prompt, sampling)

    def _target(self, ctx: CallContext, ref: ModelRef) -> tuple[ModelSpec, tuple[Region, ...]]:
        if ref.kind is RefKind.APPLICATION_PROFILE:
            profile = self.profiles.get(ctx.account_id, ref.model_id)
            spec = self.catalog.get(profile.model_id) if profile else None
            if profile is None or spec is None:
                raise ValidationError(INVALID_IDENTIFIER)
            return spec, tuple(self.regions.region(r) for r in profile.regions if r in self.regions.regions)
        spec = resolve_spec(ref, self.catalog)
        if ref.kind is RefKind.SYSTEM_PROFILE:
            return spec, self.regions.destinations(str(ref.geo), ctx.region)
        return spec, (self.regions.region(ctx.region),)

    def _prepare(
        self,
        ctx: CallContext,
        model_identifier: str,
        spec: ModelSpec,
        destinations: tuple[Region, ...],
        prompt: Prompt,
        sampling: SamplingParams,
    ) -> PreparedCall:
        started = time.perf_counter()
        num_blocks = sum(len(blocks) for _, blocks in prompt.sections())
        if num_blocks > self.max_blocks:
            raise ValidationError(f"The request has {num_blocks} content blocks; the maximum is {self.max_blocks}.")
        validate_checkpoints(prompt, spec.caching)
        pool = self.pools[spec.engine]
        rendered = render(prompt, pool.template, pool.tokenizer)
        _check_context(rendered, spec, pool)
        sampling = replace(sampling, max_tokens=_max_tokens(sampling, spec))
        had_checkpoint = bool(prompt.checkpoints())
        return PreparedCall(
            ctx, model_identifier, spec, pool, destinations, rendered, sampling, had_checkpoint, started
        )

    def count_tokens(self, model_identifier: str, prompt: Prompt) -> int:
        spec = resolve_counting_spec(parse_model_identifier(model_identifier), self.catalog)
        return self.count_tokens_for(spec, prompt)

    def count_tokens_for(self, spec: ModelSpec, prompt: Prompt) -> int:
        pool = self.pools[spec.engine]
        return render(prompt, pool.template, pool.tokenizer).num_tokens

    async def complete(self, call: PreparedCall) -> Result:
        async with aclosing(self.stream(call)) as events:
            async for event in events:
                if isinstance(event, Completed):
                    return event.result
        raise AssertionError("a stream always ends with Completed")

    async def stream(self, call: PreparedCall) -> AsyncIterator[ServiceEvent]:
        region = self._route(call)
        scope = self._scope(call, region)
        plan = self.cache.plan(scope, call.rendered, call.spec.caching)
        try:
            yield Started(_usage(call, plan, num_output=0), plan, region.region_id)
            async with aclosing(self._generate(call, plan, region.region_id)) as events:
                async for event in events:
                    yield event
        finally:
            self.cache.release(plan)

    def _route(self, call: PreparedCall) -> Region:
        """Choose the destination Region; a direct call has one candidate, its own Region."""
        up = [r for r in call.destinations if not r.down]
        if len(up) == 1:  # nothing to rank: skip hashing the prompt once more for a cache lookup
            return up[0]
        candidates = [
            Candidate(
                r.region_id,
                call.pool.load(r.region_id),
                self.cache.match_tokens(self._scope(call, r), call.rendered, call.spec.caching),
                is_source=r.region_id == call.ctx.region,
                caches=r.caches(call.spec.model_id),
            )
            for r in up
        ]
        policy = self.routing.policy_for(call.model_identifier)
        chosen = choose(policy, candidates, self.routing.guard, self.routing.rng)
        return next(r for r in up if r.region_id == chosen.region_id)

    def _scope(self, call: PreparedCall, region: Region) -> CacheScope:
        enabled = region.caches(call.spec.model_id)
        return CacheScope(call.ctx.account_id, region.region_id, call.spec.model_id, enabled)

    async def _generate(self, call: PreparedCall, plan: CachePlan, region: RegionId) -> AsyncIterator[ServiceEvent]:
        job = GenerateJob(
            call.rendered.tokens,
            call.sampling,
            plan.restore,
            plan.restore_tokens if plan.restore else 0,
            plan.capture_at,
        )
        text = TextStream(call.sampling.stop_sequences)
        worker = call.pool.worker(region)
        num_output, finish, first_token_s, prefill = 0, FinishReason.CANCELLED, None, None
        async with aclosing(worker.stream(job)) as events:
            async for event in events:
                if isinstance(event, Prefilled):
                    prefill = event
                    self.cache.commit(plan, event.snapshots)
                elif isinstance(event, Finished):
                    finish = event.reason
                else:
                    num_output += 1
                    if delta := text.push(worker.engine.token_bytes(event)):
                        first_token_s = first_token_s or time.perf_counter()
                        yield TextDelta(delta)
                    if text.stop_sequence is not None:
                        break
        if tail := text.finish():
            first_token_s = first_token_s or time.perf_counter()
            yield TextDelta(tail)
        result = _result(call, plan, text, num_output, finish, first_token_s)
        yield Completed(replace(result, prefill=prefill, inference_region=region))


def _result(
    call: PreparedCall, plan: CachePlan, text: TextStream, num_output: int, finish: FinishReason, first_s: float | None
) -> Result:
    now = time.perf_counter()
    stop = StopReason.STOP_SEQUENCE if text.stop_sequence is not None else _STOP_REASONS[finish]
    usage = _usage(call, plan, num_output)
    first_ms = None if first_s is None else int((first_s - call.started_s) * 1000)
    latency_ms = int((now - call.started_s) * 1000)
    return Result(text.text, stop, text.stop_sequence, usage, latency_ms, first_ms, plan, call.ctx.region, call.spec)


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


def _check_context(rendered: RenderedPrompt, spec: ModelSpec, pool: EnginePool) -> None:
    # The local engine needs one free position to generate; its window is usually the binding limit.
    limit = min(spec.context_window, pool.tokenizer.context_tokens - 1)
    if rendered.num_tokens > limit:
        raise InputTooLongError(rendered.num_tokens, limit)
