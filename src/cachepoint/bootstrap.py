"""Settings → the running object graph (catalog, Regions, engine pools, cache, profiles, service)."""

from __future__ import annotations

import random

import boto3
from prometheus_client import CollectorRegistry

from cachepoint.api.common import AppServices
from cachepoint.auth.authenticator import Authenticator
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import NullCache, PromptCache
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
    if cache is None:  # a zero budget is caching switched off: the null cache, not a flag
        cache = (
            PrefixCache(clock or SystemClock(), settings.cache_max_bytes) if settings.cache_max_bytes else NullCache()
        )
    profiles = profiles or ProfileStore(settings.state_dir / "profiles.sqlite")
    inference = InferenceService(catalog, pools, cache, regions, routing, profiles, settings.limits.max_blocks)
    authenticator = Authenticator(settings.auth, settings.region, settings.account_for)
    return AppServices(
        settings=settings,
        inference=inference,
        clock=clock or SystemClock(),
        telemetry=build_telemetry(settings, cache, profiles),
        authenticator=authenticator,
    )


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
