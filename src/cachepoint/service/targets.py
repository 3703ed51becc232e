"""Model identifier → `Target`, once per call, for every operation.

Before this existed, identifiers were resolved in four places (Converse, InvokeModel's Anthropic-body
check, cost, tags), and an application-profile ARN that Converse accepted got a 400 from InvokeModel.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from cachepoint.clock import Clock
from cachepoint.errors import ResourceNotFoundError, ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import INVALID_IDENTIFIER, ModelRef, RefKind, parse_model_identifier
from cachepoint.models.lifecycle import END_OF_LIFE_MESSAGE, LifecyclePolicy, LifecycleStatus
from cachepoint.models.resolve import resolve_counting_spec, resolve_spec
from cachepoint.models.spec import ModelSpec
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.regions import Region, RegionMap
from cachepoint.service.calls import Surface, Target
from cachepoint.types import CallContext


class TargetResolver:
    def __init__(
        self,
        catalog: Catalog,
        regions: RegionMap,
        profiles: ProfileStore,
        clock: Clock,
        lifecycle: LifecyclePolicy = LifecyclePolicy.ENFORCE,
    ) -> None:
        self.catalog = catalog
        self.regions = regions
        self.profiles = profiles
        self.clock = clock
        self.lifecycle = lifecycle

    def resolve(
        self,
        ctx: CallContext,
        identifier: str,
        surface: Surface,
        invoke_body: str = "anthropic",
        tier: str | None = None,
    ) -> Target:
        """`invoke_body`: the family of an InvokeModel body (`anthropic`, `nova`), which must be the model's.
        `tier`: the service tier asked for, billed at its price when the model offers it (else the standard one)."""
        return self._priced(self._in_life(self._resolve(ctx, identifier, surface, invoke_body), surface), tier)

    def _resolve(self, ctx: CallContext, identifier: str, surface: Surface, invoke_body: str) -> Target:
        if surface is Surface.ANTHROPIC:
            return self._anthropic(ctx, identifier)
        ref = parse_model_identifier(identifier)
        if surface is Surface.COUNTING:
            return Target(identifier, resolve_counting_spec(ref, self.catalog), self._own(ctx))
        target = self._application(ctx, ref) if ref.kind is RefKind.APPLICATION_PROFILE else self._bedrock(ctx, ref)
        if surface is Surface.BEDROCK_ANTHROPIC and target.spec.invoke_body != invoke_body:
            raise ValidationError(_wrong_body(target.spec, invoke_body))
        return target

    def _in_life(self, target: Target, surface: Surface) -> Target:
        """A model past its end of life gets the service's 404 (`enforce`), or is served marked (`report`). On /v1
        the dates are Anthropic's retirements, and the 404 its own: a retired model is no model there."""
        now_s, lifecycle = self.clock.now_s(), target.spec.lifecycle
        status = lifecycle.status(now_s)
        if not self.lifecycle.serves(status):
            anthropic = surface is Surface.ANTHROPIC
            raise ResourceNotFoundError(f"model: {target.identifier}" if anthropic else END_OF_LIFE_MESSAGE)
        return target if status is LifecycleStatus.ACTIVE else replace(target, lifecycle=lifecycle.notice(now_s))

    def _anthropic(self, ctx: CallContext, name: str) -> Target:
        spec = self.catalog.by_anthropic_name(name)
        if spec is None:
            raise ResourceNotFoundError(f"model: {name}")
        return Target(name, spec, self._own(ctx))

    def _bedrock(self, ctx: CallContext, ref: ModelRef) -> Target:
        spec = resolve_spec(ref, self.catalog)
        if ref.kind is RefKind.SYSTEM_PROFILE:
            return Target(ref.raw, spec, self.regions.destinations(str(ref.geo), ctx.region), _factor(spec, ref))
        return Target(ref.raw, spec, self._own(ctx))

    def _application(self, ctx: CallContext, ref: ModelRef) -> Target:
        profile = self.profiles.get(ctx.account_id, ref.model_id)
        spec = self.catalog.get(profile.model_id) if profile else None
        if profile is None or spec is None:
            raise ValidationError(INVALID_IDENTIFIER)
        destinations = tuple(self.regions.region(r) for r in profile.regions if r in self.regions.regions)
        if not destinations:
            raise ValidationError(INVALID_IDENTIFIER)
        source = parse_model_identifier(profile.copy_from)  # `global.` copies keep the global price
        tags = self.profiles.tags(ctx.account_id, ref.raw)
        return Target(ref.raw, spec, destinations, _factor(spec, source), tags)

    def _priced(self, target: Target, tier: str | None) -> Target:
        if tier is None:
            return target
        factor = self.catalog.tier_factors.get(tier) if tier in target.spec.service_tiers else None
        if factor is None:
            return replace(target, service_tier="default")
        return replace(target, service_tier=tier, price_factor=target.price_factor * factor)

    def _own(self, ctx: CallContext) -> tuple[Region, ...]:
        return (self.regions.region(ctx.region),)


def _factor(spec: ModelSpec, ref: ModelRef) -> Decimal:
    return spec.global_price_factor if ref.geo == "global" else Decimal(1)


def _wrong_body(spec: ModelSpec, invoke_body: str) -> str:
    if spec.invoke_body is None:
        return f"InvokeModel bodies are supported for Anthropic and Nova models; use Converse for {spec.name}."
    if spec.invoke_body == "anthropic":  # a Nova body sent to an Anthropic model
        return ("Malformed input request: #: required key [anthropic_version] not found, please reformat your "
                "input and try again.")  # fmt: skip
    return (f"Malformed input request: {spec.name} takes its native body (messages, system, inferenceConfig), "
            f"not {invoke_body}'s.")  # fmt: skip
