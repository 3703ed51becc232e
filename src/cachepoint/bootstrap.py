"""Settings → the running object graph (catalog, engines and their workers, cache, service)."""

from __future__ import annotations

from cachepoint.api.common import AppServices
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import PromptCache
from cachepoint.clock import Clock, SystemClock
from cachepoint.engine.factory import build_engine
from cachepoint.engine.protocol import Engine
from cachepoint.engine.worker import EngineWorker
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.template import template_named
from cachepoint.service import EngineSlot, InferenceService
from cachepoint.settings import Settings


def build_services(
    settings: Settings,
    *,
    engines: dict[str, Engine] | None = None,
    cache: PromptCache | None = None,
    clock: Clock | None = None,
) -> AppServices:
    """`engines`, `cache` and `clock` let tests inject fakes; the rest is built from settings."""
    catalog = Catalog.packaged(settings.catalog_overrides)
    _check_engine_names(catalog, settings)
    given = engines or {}
    slots = {
        name: EngineSlot(
            EngineWorker(given.get(name) or build_engine(es), name=name, max_queued_jobs=es.max_queued_jobs),
            template_named(es.template),
        )
        for name, es in settings.engines.items()
    }
    cache = cache or PrefixCache(clock or SystemClock(), settings.cache_max_bytes)
    inference = InferenceService(catalog, slots, cache)
    return AppServices(settings=settings, inference=inference)


def _check_engine_names(catalog: Catalog, settings: Settings) -> None:
    unknown = sorted({spec.engine for spec in catalog} - set(settings.engines))
    if unknown:
        raise ValueError(
            f"models refer to engines that are not configured: {unknown}; known: {sorted(settings.engines)}"
        )
