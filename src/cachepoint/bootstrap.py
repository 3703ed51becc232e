"""Settings → the running object graph (catalog, Regions, engine pools, cache, profiles, service)."""

from __future__ import annotations

import random

from cachepoint.api.common import AppServices
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import PromptCache
from cachepoint.clock import Clock, SystemClock
from cachepoint.engine.factory import build_engine
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.template import template_named
from cachepoint.routing.policy import LoadGuard, policy_named
from cachepoint.routing.pool import EngineFactory, EnginePool
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.regions import RegionMap
from cachepoint.service import InferenceService, Routing
from cachepoint.settings import Settings


def build_services(
    settings: Settings,
    *,
    engine_factory: EngineFactory | None = None,
    cache: PromptCache | None = None,
    clock: Clock | None = None,
    profiles: ProfileStore | None = None,
) -> AppServices:
    """The keyword arguments let tests inject fakes; the rest is built from settings."""
    catalog = Catalog.packaged(settings.catalog_overrides)
    _check_engine_names(catalog, settings)
    factory = engine_factory or build_engine
    pools = {name: EnginePool(es, template_named(es.template), factory) for name, es in settings.engines.items()}
    regions = RegionMap.packaged(settings.regions_table)
    regions.region(settings.region)  # the listener's own Region must exist
    r = settings.routing
    per_profile = {profile: policy_named(name) for profile, name in r.profiles.items()}
    routing = Routing(
        policy_named(r.policy),
        LoadGuard(r.balance_abs_threshold, r.balance_rel_threshold),
        random.Random(r.seed),
        per_profile,
    )
    cache = cache or PrefixCache(clock or SystemClock(), settings.cache_max_bytes)
    profiles = profiles or ProfileStore(settings.state_dir / "profiles.sqlite")
    inference = InferenceService(catalog, pools, cache, regions, routing, profiles)
    return AppServices(settings=settings, inference=inference, clock=clock or SystemClock())


def _check_engine_names(catalog: Catalog, settings: Settings) -> None:
    unknown = sorted({spec.engine for spec in catalog} - set(settings.engines))
    if unknown:
        raise ValueError(
            f"models refer to engines that are not configured: {unknown}; known: {sorted(settings.engines)}"
        )
