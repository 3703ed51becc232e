"""The control plane's service: foundation models, inference profiles, tags and the logging configuration.

Application profiles, tags and logging configurations belong to the caller's account; system profiles
are seen from the caller's Region (its source Region), with the destinations that Region routes to.
Handlers render what these methods return; they never reach the stores themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachepoint.clock import Clock
from cachepoint.errors import ResourceNotFoundError, ServiceQuotaExceededError, ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import INVALID_IDENTIFIER, ModelRef, RefKind, parse_model_identifier
from cachepoint.models.lifecycle import LifecyclePolicy, LifecycleStatus
from cachepoint.models.spec import ModelSpec
from cachepoint.routing.profiles import AppProfile, ProfileStore
from cachepoint.routing.regions import Region, RegionMap
from cachepoint.types import CallContext

MAX_APPLICATION_PROFILES = 1000  # per account, Bedrock's default quota


@dataclass(frozen=True)
class SystemProfile:
    spec: ModelSpec
    geo: str
    destinations: tuple[Region, ...]


@dataclass(frozen=True)
class ListedModel:
    spec: ModelSpec
    status: LifecycleStatus  # END_OF_LIFE only under the `report` policy (shown as LEGACY, its dates past)


Profile = SystemProfile | AppProfile


class ControlService:
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

    # -- foundation models ----------------------------------------------------------------------
    def models(self) -> list[ListedModel]:
        """The catalog as the control plane lists it now: past their end of life, models leave it (`enforce`)."""
        listed = [ListedModel(spec, spec.lifecycle.status(self.clock.now_s())) for spec in self.catalog]
        return [m for m in listed if self.lifecycle.serves(m.status)]

    def model(self, identifier: str) -> ListedModel:
        spec = self.catalog.get(identifier.rsplit("/", 1)[-1])
        listed = ListedModel(spec, spec.lifecycle.status(self.clock.now_s())) if spec else None
        if listed is None or not self.lifecycle.serves(listed.status):
            raise ResourceNotFoundError(f"The model {identifier} does not exist.")
        return listed

    # -- inference profiles ---------------------------------------------------------------------
    def system_profiles(self, ctx: CallContext) -> list[SystemProfile]:
        found = []
        for spec in (m.spec for m in self.models()):
            for geo in sorted(spec.geos):
                try:
                    destinations = self.regions.destinations(geo, ctx.region)
                except ValidationError:  # this geography is not reachable from the caller's Region
                    continue
                found.append(SystemProfile(spec, geo, destinations))
        return found

    def application_profiles(self, ctx: CallContext) -> list[AppProfile]:
        return self.profiles.list(ctx.account_id)

    def profile(self, ctx: CallContext, identifier: str) -> Profile:
        ref = _parse_or_none(identifier)
        if ref is None or ref.kind is RefKind.APPLICATION_PROFILE:
            profile = self.profiles.get(ctx.account_id, ref.model_id if ref else identifier)
            if profile is not None:
                return profile
        elif ref.kind is RefKind.SYSTEM_PROFILE and (spec := self.catalog.get(ref.model_id)) and ref.geo in spec.geos:
            return SystemProfile(spec, str(ref.geo), self.regions.destinations(str(ref.geo), ctx.region))
        raise ResourceNotFoundError(f"Inference profile {identifier} does not exist.")

    def create_profile(
        self, ctx: CallContext, name: str, description: str | None, copy_from: str, tags: Mapping[str, str]
    ) -> AppProfile:
        model_id, regions = self._copy_source(copy_from)
        if len(self.profiles.list(ctx.account_id)) >= MAX_APPLICATION_PROFILES:
            raise ServiceQuotaExceededError(
                f"The account has reached its quota of {MAX_APPLICATION_PROFILES} application inference profiles."
            )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.now_s()))
        profile = self.profiles.create(ctx.account_id, ctx.region, name, description, copy_from, model_id, regions, now)
        if tags:
            self.profiles.tag(ctx.account_id, profile.arn, dict(tags))
        return profile

    def delete_profile(self, ctx: CallContext, identifier: str) -> None:
        ref = _parse_or_none(identifier)
        if ref is not None and ref.kind is not RefKind.APPLICATION_PROFILE:
            raise ValidationError("System-defined inference profiles cannot be deleted.")
        self.profiles.delete(ctx.account_id, ref.model_id if ref else identifier)

    def _copy_source(self, copy_from: str) -> tuple[str, tuple[str, ...]]:
        """A foundation-model ARN (one Region) or a system-profile ARN (its destination Regions)."""
        ref = parse_model_identifier(copy_from)
        spec = self.catalog.get(ref.model_id)
        if ref.arn_region is None or spec is None or ref.kind is RefKind.APPLICATION_PROFILE:
            raise ValidationError(f"The provided model source {copy_from} is invalid. {INVALID_IDENTIFIER}")
        if ref.kind is RefKind.FOUNDATION_MODEL:
            self.regions.region(ref.arn_region)
            return spec.model_id, (ref.arn_region,)
        destinations = self.regions.destinations(str(ref.geo), ref.arn_region)
        return spec.model_id, tuple(str(r.region_id) for r in destinations)

    # -- tags -----------------------------------------------------------------------------------
    def tag(self, ctx: CallContext, arn: str, tags: Mapping[str, str]) -> None:
        self._require_own_app_profile(ctx, arn)
        self.profiles.tag(ctx.account_id, arn, dict(tags))

    def untag(self, ctx: CallContext, arn: str, keys: list[str]) -> None:
        self._require_own_app_profile(ctx, arn)
        self.profiles.untag(ctx.account_id, arn, keys)

    def tags(self, ctx: CallContext, arn: str) -> dict[str, str]:
        self._require_own_app_profile(ctx, arn)
        return self.profiles.tags(ctx.account_id, arn)

    def _require_own_app_profile(self, ctx: CallContext, arn: str) -> None:
        ref = _parse_or_none(arn)
        if ref is None:
            raise ResourceNotFoundError(f"Resource {arn} does not exist.")
        if ref.kind is not RefKind.APPLICATION_PROFILE:
            raise ValidationError("Only application inference profiles can be tagged.")
        if self.profiles.get(ctx.account_id, ref.model_id) is None:
            raise ResourceNotFoundError(f"Resource {arn} does not exist.")

    # -- model-invocation logging configuration --------------------------------------------------
    def put_logging(self, ctx: CallContext, config: dict[str, Any] | None) -> None:
        self.profiles.put_logging(ctx.account_id, config)

    def logging(self, ctx: CallContext) -> dict[str, Any] | None:
        return self.profiles.logging(ctx.account_id)[1]


def _parse_or_none(identifier: str) -> ModelRef | None:
    """None for a bare application-profile ID, which is not a model identifier on its own."""
    try:
        return parse_model_identifier(identifier)
    except ValidationError:
        return None
