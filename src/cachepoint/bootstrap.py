"""Settings → the running object graph (catalog, Regions, engine pools, cache, profiles, services)."""

from __future__ import annotations

import logging
import random
import shutil

import boto3
from prometheus_client import CollectorRegistry

from cachepoint.api.common import AppServices
from cachepoint.auth.authenticator import Authenticator
from cachepoint.cache.disk import DiskTier, Recovery
from cachepoint.cache.directory import ReplicaState
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.mirror import DirectoryMirror
from cachepoint.cache.redis_directory import RedisDirectory
from cachepoint.cluster.health import HealthMonitor
from cachepoint.cluster.node import NodeEngines
from cachepoint.cluster.snapshots import NodeSnapshots
from cachepoint.cluster.remote import remote_factory
from cachepoint.cache.plan import NullCache, PromptCache
from cachepoint.cache.store import TieredStore
from cachepoint.clock import Clock, SystemClock
from cachepoint.engine.backend import EngineFactory
from cachepoint.engine.factory import build_backend, build_engine, model_file
from cachepoint.engine.fingerprint import engine_fingerprint
from cachepoint.files import private_dir
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.template import template_named
from cachepoint.routing.policy import LoadGuard, policy_named, replica_policy_named
from cachepoint.routing.pool import EnginePool
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.statedb import PostgresDatabase
from cachepoint.routing.regions import RegionMap
from cachepoint.service.diagnoses import TurnMemory
from cachepoint.service.shared_turns import SharedTurns
from cachepoint.service import InferenceService, Routing
from cachepoint.service.control import ControlService
from cachepoint.service.ledger import Ledger
from cachepoint.service.offload import Offload, OffloadSettings
from cachepoint.settings import EngineSettings, Settings
from cachepoint.telemetry.history import History
from cachepoint.telemetry.metrics import Metrics
from cachepoint.telemetry.otlp import OtlpExporter
from cachepoint.telemetry.recorder import LogPolicy, Telemetry
from cachepoint.telemetry.sinks import LocalLogSink, LogSink, S3Delivery


log = logging.getLogger(__name__)
MAX_DEFAULT_DISK_BYTES = 64 * 2**30


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
    fingerprints = {name: _fingerprint(es) for name, es in settings.engines.items()}
    pools = _pools(settings, regions, engine_factory or build_engine, fingerprints)
    cache = cache if cache is not None else _cache(settings, clock)
    notes = _cache_notes(
        settings, cache, cache.recover(fingerprints.values()) if isinstance(cache, PrefixCache) else None
    )
    profiles = profiles or _profiles(settings)
    telemetry = build_telemetry(settings, cache, profiles)
    inference = InferenceService(
        catalog,
        pools,
        cache,
        regions,
        _routing(settings),
        profiles,
        ledger=Ledger(telemetry),
        clock=clock,
        offload=Offload(OffloadSettings(decode_processes=settings.limits.decode_processes)),
        max_blocks=settings.limits.max_blocks,
        lifecycle=settings.lifecycle,
        implicit_caching=settings.implicit_caching,
        diagnoses=_turns(settings),
    )
    authenticator = Authenticator(settings.auth, settings.region, settings.account_for, regions.regions)
    monitor = _monitor(settings, inference, cache, clock)
    return AppServices(
        settings=settings,
        inference=inference,
        control=ControlService(catalog, regions, profiles, clock, settings.lifecycle),
        clock=clock,
        telemetry=telemetry,
        authenticator=authenticator,
        notes=notes + _cluster_notes(settings, cache, monitor),
        monitor=monitor,
    )


def build_node(settings: Settings) -> NodeEngines:
    """`cachepoint node`: every configured engine as one replica, and the store its snapshots stay in."""
    runners, fingerprints = {}, {}
    for name, es in settings.engines.items():
        if es.kind == "vllm":
            raise ValueError(f"engine {name!r}: a node runs embedded engines; list a vLLM server as vllm://HOST:PORT")
        runners[name] = build_backend(es, build_engine, settings.state_dir).runner(f"{name}@node")
        fingerprints[name] = _fingerprint(es)
    budget = settings.cache_max_bytes
    return NodeEngines(settings.node_name, runners, fingerprints, NodeSnapshots(budget))


def _monitor(settings: Settings, inference: InferenceService, cache: PromptCache, clock: Clock) -> HealthMonitor:
    mirror = cache.mirror if isinstance(cache, PrefixCache) else None
    publish = None
    if mirror is not None:
        directory = mirror.directory

        async def publish(states: list[ReplicaState]) -> None:
            await inference.on_cache_thread(mirror.call, lambda: directory.report_replicas(states))

    c = settings.cluster
    return HealthMonitor(inference.pools, inference.replica_down, clock, name=settings.node_name,
                         interval_s=c.health_interval_s, down_after=c.down_after_failures, publish=publish)  # fmt: skip


def _cluster_notes(settings: Settings, cache: PromptCache, monitor: HealthMonitor) -> tuple[str, ...]:
    notes = []
    mirror = cache.mirror if isinstance(cache, PrefixCache) else None
    if mirror is not None:
        notes.append(f"cluster: cache directory {settings.cache_directory} (this gateway: {settings.node_name})")
    if nodes := sorted({replica.name for _, replica in monitor.nodes()}):
        notes.append(f"cluster: node replicas {', '.join(nodes)}")
    return tuple(notes)


def _pools(
    settings: Settings, regions: RegionMap, factory: EngineFactory, fingerprints: dict[str, str]
) -> dict[str, EnginePool]:
    remote = remote_factory(settings.cluster.secret, settings.state_dir)
    pools = {
        name: EnginePool(
            es, template_named(es.template), build_backend(es, factory, settings.state_dir), fingerprints[name], remote
        )
        for name, es in settings.engines.items()
    }
    serving = [r for r in regions.regions.values() if not r.down]
    for pool in pools.values():
        pool.start(serving)
    return pools


def _profiles(settings: Settings) -> ProfileStore:
    """Control-plane state: PostgreSQL shared by a cluster's gateways, else this gateway's SQLite file."""
    if settings.state_url:
        return ProfileStore(PostgresDatabase(settings.state_url))
    return ProfileStore(settings.state_dir / "profiles.sqlite")


def _fingerprint(settings: EngineSettings) -> str:
    try:
        weights = model_file(settings) if settings.kind == "llamacpp" else None
    except FileNotFoundError:
        weights = None  # the engine's own start-up says so; an injected test engine needs no file
    return engine_fingerprint(settings, template_named(settings.template), weights)


def _cache(settings: Settings, clock: Clock) -> PromptCache:
    """A zero budget is caching switched off: the null cache, not a flag. With the disk tier on, what exists
    is bounded by the disk budget and RAM holds the hot part of it."""
    if not settings.cache_max_bytes:
        return NullCache()
    disk = _disk_tier(settings)
    budget = disk.budget_bytes if disk is not None else settings.cache_max_bytes
    store = TieredStore(settings.cache_max_bytes, disk)
    mirror = None
    if settings.cache_directory:
        directory = RedisDirectory(settings.cache_directory, settings.cache_directory_namespace)
        mirror = DirectoryMirror(directory, f"embedded@{settings.node_name}")
    return PrefixCache(clock, budget, store, max_account_share=settings.cache_max_account_share, mirror=mirror)


def _turns(settings: Settings) -> TurnMemory | None:
    """The cache diagnosis's turns: in the cluster's Redis with a shared directory, else this gateway's memory."""
    if not settings.cache_directory:
        return None
    return SharedTurns(settings.cache_directory, settings.cache_directory_namespace)


def _disk_tier(settings: Settings) -> DiskTier | None:
    budget = settings.cache_disk_max_bytes
    if budget == 0:
        return None
    directory = settings.disk_dir
    if budget is None:  # half of what is free there (our own snapshots count as free), at most 64 GiB
        private_dir(directory)
        ours = sum(f.stat().st_size for f in directory.glob("snapshots/*.kv"))
        budget = min((shutil.disk_usage(directory).free + ours) // 2, MAX_DEFAULT_DISK_BYTES)
    return DiskTier(directory, budget, max_queued_bytes=max(settings.cache_max_bytes // 4, 256 * 2**20))


def _cache_notes(settings: Settings, cache: PromptCache, found: Recovery | None) -> tuple[str, ...]:
    """The start-up banner's cache lines: budgets per tier, and what a restart recovered and dropped."""
    if not isinstance(cache, PrefixCache):
        return ("cache:   off ([cache] max_bytes = 0)",)
    notes = [f"cache:   RAM {settings.cache_max_bytes // 2**20:,} MiB ([cache] max_bytes)"]
    if cache.disk is None:
        notes[0] += "; disk tier off ([cache] disk_max_bytes = 0)"
        return tuple(notes)
    notes[0] += f"; disk {cache.disk.budget_bytes // 2**20:,} MiB at {cache.disk.directory} ([cache] disk_max_bytes)"
    if found is not None:
        dropped = ", ".join(f"{n} {why}" for why, n in sorted(found.dropped.items())) or "none"
        notes.append(f"         recovered {len(found.entries)} entries ({len(found.snapshots)} snapshots) in "
                     f"{found.seconds:.2f} s; dropped: {dropped}")  # fmt: skip
    return tuple(notes)


def _routing(settings: Settings) -> Routing:
    r = settings.routing
    per_profile = {profile: policy_named(name) for profile, name in r.profiles.items()}
    guard = LoadGuard(r.balance_abs_threshold, r.balance_rel_threshold)
    return Routing(policy_named(r.policy), guard, random.Random(r.seed), per_profile,
                   replica=replica_policy_named(r.replica_policy))  # fmt: skip


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
    otlp = OtlpExporter(settings.otlp_endpoint) if settings.otlp_endpoint else None
    return Telemetry(sinks, Metrics(registry, cache.stats), History(), policy, registry, profiles.logging, otlp)


def _check_engine_names(catalog: Catalog, settings: Settings) -> None:
    unknown = sorted({spec.engine for spec in catalog} - set(settings.engines))
    if unknown:
        raise ValueError(
            f"models refer to engines that are not configured: {unknown}; known: {sorted(settings.engines)}"
        )
