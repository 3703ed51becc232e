"""The orchestrator: decode → resolve the model → validate → render → cache plan → generate → one Usage.

The API layer calls only this module. Everything that differs between dialects has been translated
away by the request's decoder, so Converse, InvokeModel and /v1/messages share every rule and number.

Event-loop discipline: decoding runs in worker processes (or in place for small bodies), rendering and
tokenizing in threads, generation on the engine's own thread; the loop only plans the cache and
relays events. Cheap bounds (block count, characters against the context window) are checked before
the expensive steps.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import TypeVar

from cachepoint.accounting.usage import Usage
from cachepoint.cache.diagnosis import Diagnosis
from cachepoint.cache.plan import CachePlan, CacheScope, PromptCache, SnapshotUnavailable, region_switch
from cachepoint.clock import Clock
from cachepoint.engine.protocol import (
    EngineEvent,
    Finished,
    FinishReason,
    GenerateJob,
    Prefilled,
    ReplicaUnavailable,
)
from cachepoint.engine.textstream import TextStream
from cachepoint.errors import (
    CachepointError,
    InputTooLongError,
    InternalError,
    ServiceUnavailableError,
    ValidationError,
)
from cachepoint.models.catalog import Catalog
from cachepoint.models.lifecycle import LifecyclePolicy
from cachepoint.models.spec import ModelSpec
from cachepoint.prompt.checkpoints import validate_checkpoints
from cachepoint.prompt.implicit import with_implicit_checkpoint
from cachepoint.prompt.render import render
from cachepoint.routing.pool import EnginePool
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.regions import Region, RegionMap
from cachepoint.routing.replicas import Replica
from cachepoint.service.calls import (
    Completed,
    Decoded,
    InvocationRequest,
    PreparedCall,
    Result,
    ServiceEvent,
    Started,
    Target,
    TextDelta,
)
from cachepoint.service.cachecalls import CacheCalls
from cachepoint.service.diagnoses import DiagnosisMemory, TurnMemory, diagnosis_of
from cachepoint.service.ledger import Ledger
from cachepoint.service.offload import Offload
from cachepoint.service.router import MAX_ATTEMPTS, Router, Routing, chain
from cachepoint.service.targets import TargetResolver
from cachepoint.types import Prompt, RegionId, SamplingParams, StopReason

DEFAULT_MAX_TOKENS = 4096
T = TypeVar("T")
log = logging.getLogger(__name__)


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
        *,
        ledger: Ledger,
        clock: Clock,
        offload: Offload | None = None,
        max_blocks: int = 10_000,
        lifecycle: LifecyclePolicy = LifecyclePolicy.ENFORCE,
        implicit_caching: bool = True,
        diagnoses: TurnMemory | None = None,
    ) -> None:
        self.implicit_caching = implicit_caching  # `[catalog] implicit_caching = "off"` overrides the catalog
        self.max_blocks = max_blocks
        self.catalog = catalog
        self.pools = dict(pools)
        self.cache = cache
        self.regions = regions
        self.routing = routing
        self.profiles = profiles
        self.targets = TargetResolver(catalog, regions, profiles, clock, lifecycle)
        self.ledger = ledger
        self.clock = clock
        self.offload = offload or Offload()
        self._cache = CacheCalls(cache)
        self.router = Router(self.pools, cache, self._cache, routing)
        self.diagnoses = diagnoses or DiagnosisMemory(clock)

    async def open(self, request: InvocationRequest) -> PreparedCall:
        """Decode, resolve and render one call; a failure here is recorded and raised."""
        started_s, started_perf_s = self.clock.now_s(), time.perf_counter()
        decoded: Decoded | None = None
        target: Target | None = None
        try:
            decoded = await self.offload.decode(request.decode, request.body)
            target = self._resolve(request, _accepted(decoded))
            return await self._prepare(request, decoded, target, started_s, started_perf_s)
        except Exception as exc:
            target = target or self._resolve_quietly(request, decoded)  # so the failure counts under its model
            self.ledger.failed(request, started_s, _as_error(exc), decoded, target)
            raise

    async def count_tokens(self, request: InvocationRequest) -> int:
        decoded = _accepted(await self.offload.decode(request.decode, request.body))
        target = self._resolve(request, decoded)
        self._check_blocks(decoded.prompt)
        pool = self.pools[target.spec.engine]
        rendered = await self.offload.run(render, decoded.prompt, pool.template, pool.tokenizer)
        return rendered.num_tokens

    async def complete(self, call: PreparedCall) -> Result:
        async with aclosing(self.stream(call)) as events:
            async for event in events:
                if isinstance(event, Completed):
                    return event.result
        raise AssertionError("a stream always ends with Completed")

    async def stream(self, call: PreparedCall) -> AsyncGenerator[ServiceEvent, None]:
        """The call's events; its outcome is recorded once, whichever way the stream ends."""
        result: Result | None = None
        try:
            async for event in self._events(call):
                if isinstance(event, Completed):
                    result = event.result
                yield event
        except Exception as exc:
            self.ledger.failed(call.request, call.started_s, _as_error(exc), call.decoded, call.target)
            raise
        except BaseException:  # closed early: done if the result was out, else the client left
            if result is None:
                self.ledger.disconnected(call)
            else:
                self.ledger.succeeded(call, result)
            raise
        if result is not None:
            self.ledger.succeeded(call, result)

    def close(self) -> None:
        self.offload.close()
        self.diagnoses.close()
        for pool in self.pools.values():
            pool.close()
        self._cache.close()
        self.cache.close()

    # -- preparing --------------------------------------------------------------------------------
    def _resolve(self, request: InvocationRequest, decoded: Decoded) -> Target:
        identifier = decoded.model or request.model_identifier
        tier = decoded.service_tier or request.service_tier
        return self.targets.resolve(request.ctx, identifier, request.operation.facts.surface, decoded.invoke_body, tier)

    def _resolve_quietly(self, request: InvocationRequest, decoded: Decoded | None) -> Target | None:
        identifier = decoded.model if decoded and decoded.model else request.model_identifier
        try:
            body = decoded.invoke_body if decoded else "anthropic"
            return self.targets.resolve(request.ctx, identifier, request.operation.facts.surface, body)
        except CachepointError:
            return None

    async def _prepare(
        self, request: InvocationRequest, decoded: Decoded, target: Target, started_s: float, started_perf_s: float
    ) -> PreparedCall:
        prompt, spec = decoded.prompt, target.spec
        self._check_blocks(prompt)
        validate_checkpoints(prompt, spec.caching)
        pool = self.pools[spec.engine]
        limit = _context_limit(spec, pool)
        _check_characters(prompt, limit, pool.max_token_bytes)
        rendered = await self.offload.run(render, prompt, pool.template, pool.tokenizer)
        if rendered.num_tokens > limit:
            raise InputTooLongError(rendered.num_tokens, limit)
        if self.implicit_caching and spec.implicit_caching and spec.caching is not None:
            rendered = with_implicit_checkpoint(rendered, spec.caching.fields)
        sampling = replace(decoded.sampling, max_tokens=_max_tokens(decoded.sampling, spec))
        return PreparedCall(request, decoded, target, rendered, sampling, started_s, started_perf_s)

    def _check_blocks(self, prompt: Prompt) -> None:
        num_blocks = sum(len(blocks) for _, blocks in prompt.sections())
        if num_blocks > self.max_blocks:
            raise ValidationError(f"The request has {num_blocks} content blocks; the maximum is {self.max_blocks}.")

    # -- running ----------------------------------------------------------------------------------
    async def _events(self, call: PreparedCall) -> AsyncGenerator[ServiceEvent, None]:
        """Route, plan, start the engine. A remote replica's first event is awaited before the call starts: one
        that fails before it, or no longer holds the snapshot the plan restores, costs a new plan on the replicas
        left (its entries go, `replica-lost`), and the client sees none of it."""
        tried: set[str] = set()
        for _ in range(MAX_ATTEMPTS):
            region, elsewhere, known = await self.router.region(call)
            replica = await self.router.replica(call, region, tried, known)
            plan = region_switch(await self._plan(call, region, replica), elsewhere)
            diagnosis = await self._diagnose(call, plan, region) if call.decoded.diagnose else None
            events = replica.runner.stream(self._job(call, plan, region))
            try:
                first = await anext(events) if replica.remote else None
            except (ReplicaUnavailable, SnapshotUnavailable) as error:
                await events.aclose()
                self._cache.release(plan)
                await self.router.failed(replica, plan, error)
                if isinstance(error, ReplicaUnavailable):
                    tried.add(replica.name)
                continue
            except BaseException:
                await events.aclose()
                self._cache.release(plan)
                raise
            try:
                usage = _usage(call, plan, num_output=0)
                yield Started(usage, plan, region.region_id, replica.name, call.target.lifecycle, diagnosis)
                engine = self.router.resumable(call, region, replica, chain(first, events), tried)
                async with aclosing(self._generate(call, plan, region.region_id, replica, engine, diagnosis)) as out:
                    async for event in out:
                        yield event
            finally:
                self._cache.release(plan)
            return
        raise ServiceUnavailableError("No engine replica could take the request. Try again later.")

    async def _diagnose(self, call: PreparedCall, plan: CachePlan, region: Region) -> Diagnosis | None:
        args = (self.diagnoses, call, plan, str(region.region_id))
        return await self.offload.run(diagnosis_of, *args) if self.diagnoses.blocking else diagnosis_of(*args)

    async def replica_down(self, replica: Replica, reason: str) -> None:
        """A replica is gone (its health checks failed): see `Router.down`."""
        await self.router.down(replica, reason)

    async def on_cache_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn` where the cache's calls run (its own thread with a shared directory, else in place)."""
        return await self._cache.run(fn, *args)

    async def _plan(self, call: PreparedCall, region: Region, replica: Replica) -> CachePlan:
        """The cache plan, with a disk hit's snapshot read (and verified) in a thread; a snapshot that cannot
        serve its hit is dropped and the call planned again, so its checkpoints miss and say why."""
        scope = self.router.scope(call, region, replica)
        plan = await self._cache.plan(self.cache.plan, scope, call.rendered, call.spec.caching)
        while plan.fetch_blob is not None:
            try:
                return await self.offload.run(self.cache.fetch, plan)
            except SnapshotUnavailable as error:
                await self._cache.run(self.cache.discard, plan, error)
                self._cache.release(plan)
                plan = await self._cache.plan(self.cache.plan, scope, call.rendered, call.spec.caching)
            except BaseException:
                self._cache.release(plan)
                raise
        return plan

    def _job(self, call: PreparedCall, plan: CachePlan, region: Region) -> GenerateJob:
        return GenerateJob(
            call.rendered.tokens,
            call.sampling,
            plan.restore,
            plan.restore_tokens if plan.restore else 0,
            plan.capture_at,
            salt=_salt(self.router.scope(call, region)),
        )

    async def _generate(
        self,
        call: PreparedCall,
        plan: CachePlan,
        region: RegionId,
        replica: Replica,
        events: AsyncGenerator[EngineEvent, None],
        diagnosis: Diagnosis | None = None,
    ) -> AsyncGenerator[ServiceEvent, None]:
        text = TextStream(call.sampling.stop_sequences)
        tokens = replica.runner.engine
        num_output, finish, first_token_s, prefill = 0, FinishReason.CANCELLED, None, None
        async with aclosing(events) as stream:
            async for event in stream:
                if isinstance(event, Prefilled):
                    prefill = event
                    await self._cache.run(self.cache.commit, plan, event)
                elif isinstance(event, Finished):
                    finish = event.reason
                    prefill = _with_engine_cache(prefill, event, len(call.rendered.tokens))
                else:
                    num_output += 1
                    if delta := text.push(tokens.token_bytes(event)):
                        first_token_s = first_token_s or time.perf_counter()
                        yield TextDelta(delta)
                    if text.stop_sequence is not None:
                        break
        if tail := text.finish():
            first_token_s = first_token_s or time.perf_counter()
            yield TextDelta(tail)
        result = _result(call, plan, text, num_output, finish, first_token_s)
        yield Completed(replace(result, prefill=prefill, inference_region=region, replica=replica.name,
                                service_tier=call.decoded.service_tier, diagnosis=diagnosis))  # fmt: skip




def _salt(scope: CacheScope) -> str:
    """One value per (account, Region, base model): an engine that caches by itself (vLLM's cache_salt)
    never lets one scope physically reuse another's KV."""
    return hashlib.sha256(f"{scope.account_id}|{scope.region}|{scope.model_id}".encode()).hexdigest()[:32]


def _with_engine_cache(prefill: Prefilled | None, finished: Finished, num_prompt: int) -> Prefilled | None:
    """Engines that report physical reuse only at the end (vLLM's usage) complete the prefill figures then."""
    if prefill is None or finished.engine_cached_tokens is None:
        return prefill
    cached = finished.engine_cached_tokens
    return replace(prefill, engine_cached_tokens=cached, num_evaluated_tokens=num_prompt - cached)


def _accepted(decoded: Decoded) -> Decoded:
    if decoded.rejected is not None:
        raise decoded.rejected
    return decoded


def _as_error(exc: BaseException) -> CachepointError:
    return exc if isinstance(exc, CachepointError) else InternalError("internal error")


def _result(
    call: PreparedCall, plan: CachePlan, text: TextStream, num_output: int, finish: FinishReason, first_s: float | None
) -> Result:
    now = time.perf_counter()
    stop = StopReason.STOP_SEQUENCE if text.stop_sequence is not None else _STOP_REASONS[finish]
    usage = _usage(call, plan, num_output)
    first_ms = None if first_s is None else int((first_s - call.started_perf_s) * 1000)
    latency_ms = int((now - call.started_perf_s) * 1000)
    return Result(text.text, stop, text.stop_sequence, usage, latency_ms, first_ms, plan, call.ctx.region, call.spec,
                  lifecycle=call.target.lifecycle)  # fmt: skip


def _usage(call: PreparedCall, plan: CachePlan, num_output: int) -> Usage:
    cached = plan.read_tokens + plan.write_5m_tokens + plan.write_1h_tokens
    return Usage(
        input_tokens=call.rendered.num_tokens - cached,
        output_tokens=num_output,
        cache_read_tokens=plan.read_tokens,
        cache_write_5m_tokens=plan.write_5m_tokens,
        cache_write_1h_tokens=plan.write_1h_tokens,
        had_checkpoint=call.had_checkpoint or plan.read_tokens > 0,  # an implicit read is reported as a read
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


def _context_limit(spec: ModelSpec, pool: EnginePool) -> int:
    # The local engine needs one free position to generate; its window is usually the binding limit.
    return min(spec.context_window, pool.tokenizer.context_tokens - 1)


def _check_characters(prompt: Prompt, limit_tokens: int, max_token_bytes: int) -> None:
    """Refuse a prompt that cannot fit before tokenizing it: no token covers more than `max_token_bytes`
    bytes, and a character is at least one byte, so it has at least characters / max_token_bytes tokens."""
    num_chars = sum(len(block.text) for _, blocks in prompt.sections() for block in blocks)
    at_least = math.ceil(num_chars / max(max_token_bytes, 1))
    if at_least > limit_tokens:
        raise InputTooLongError(at_least, limit_tokens)
