"""Settings → the running object graph (catalog, Regions, engine pools, cache, profiles, services)."""

from __future__ import annotations

import random

import boto3
from prometheus_client import CollectorRegistry

from cachepoint.api.common import AppServices
from cachepoint.auth.authenticator import Authenticator
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import NullCache, PromptCache
from cachepoint.clock import Clock, SystemClock
from cachepoint.engine.backend import EngineFactory
from cachepoint.engine.factory import build_backend, build_engine
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.template import template_named
from cachepoint.routing.policy import LoadGuard, policy_named
from cachepoint.routing.pool import EnginePool
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.regions import RegionMap
from cachepoint.service import InferenceService, Routing
from cachepoint.service.control import ControlService
from cachepoint.service.ledger import Ledger
from cachepoint.service.offload import Offload, OffloadSettings
from cachepoint.settings import Settings
from cachepoint.telemetry.history import History
from cachepoint.telemetry.metrics import Metrics
from cachepoint.telemetry.recorder import LogPolicy, Telemetry
from cachepoint.telemetry.sinks import LocalLogSink, LogSink, S3Delivery


def build_services(
    settings: Settings,
    *,
    engine_factory: EngineFactory | None = None,
    cache: PromptCache | None = None,
    clock: Clock | None = None,
    profiles: ProfileStore | None = None,
) -> AppServices:
    """The keyword arguments let tests inject fakes; the rest is built from settings. Every engine is
    built here, before the server listens."""
    clock = clock or SystemClock()
    catalog = Catalog.packaged(settings.catalog_overrides)
    _check_engine_names(catalog, settings)
    regions = RegionMap.packaged(settings.regions_table)
    regions.region(settings.region)  # the listener's own Region must exist
    cache = cache if cache is not None else _cache(settings, clock)
    profiles = profiles or ProfileStore(settings.state_dir / "profiles.sqlite")
    telemetry = build_telemetry(settings, cache, profiles)
    inference = InferenceService(
        catalog,
        _pools(settings, regions, engine_factory or build_engine),
        cache,
        regions,
        _routing(settings),
        profiles,
        ledger=Ledger(telemetry),
        clock=clock,
        offload=Offload(OffloadSettings(decode_processes=settings.limits.decode_processes)),
        max_blocks=settings.limits.max_blocks,
    )
    authenticator = Authenticator(settings.auth, settings.region, settings.account_for, regions.regions)
    return AppServices(
        settings=settings,
        inference=inference,
        control=ControlService(catalog, regions, profiles, clock),
        clock=clock,
        telemetry=telemetry,
        authenticator=authenticator,
    )


def _pools(settings: Settings, regions: RegionMap, factory: EngineFactory) -> dict[str, EnginePool]:
    pools = {
        name: EnginePool(es, template_named(es.template), build_backend(es, factory, settings.state_dir))
        for name, es in settings.engines.items()
    }
    serving = [r.region_id for r in regions.regions.values() if not r.down]
    for pool in pools.values():
        pool.start(serving)
    return pools


def _cache(settings: Settings, clock: Clock) -> PromptCache:
    """A zero budget is caching switched off: the null cache, not a flag."""
    if not settings.cache_max_bytes:
        return NullCache()
    return PrefixCache(clock, settings.cache_max_bytes, max_account_share=settings.cache_max_account_share)


def _routing(settings: Settings) -> Routing:
    r = settings.routing
    per_profile = {profile: policy_named(name) for profile, name in r.profiles.items()}
    guard = LoadGuard(r.balance_abs_threshold, r.balance_rel_threshold)
    return Routing(policy_named(r.policy), guard, random.Random(r.seed), per_profile)


def build_telemetry(settings: Settings, cache: PromptCache, profiles: ProfileStore) -> Telemetry:
    registry = CollectorRegistry(auto_describe=True)
    logging = settings.logging
    local = LocalLogSink(settings.log_dir, fsync=logging.fsync)
    sinks: list[LogSink] = [local]
    s3_uri = ""
    if logging.s3_bucket:
        client = boto3.client("s3", endpoint_url=logging.s3_endpoint_url)
        sinks.append(S3Delivery(local, client, logging.s3_bucket, logging.s3_prefix))
        s3_uri = f"s3://{logging.s3_bucket}/{logging.s3_prefix}"
    policy = LogPolicy(logging.enabled, logging.text_data_delivery, s3_uri)
    return Telemetry(sinks, Metrics(registry, cache.stats), History(), policy, registry, profiles.logging)


def _check_engine_names(catalog: Catalog, settings: Settings) -> None:
    unknown = sorted({spec.engine for spec in catalog} - set(settings.engines))
    if unknown:
        raise ValueError(
            f"models refer to engines that are not configured: {unknown}; known: {sorted(settings.engines)}"
        )
