"""Calls into the prompt cache from the event loop.

An in-memory cache answers in microseconds and is called in place. A cache that asks a shared directory
(`PromptCache.blocking`) waits on the network, so its calls run on one thread of their own: the loop never
waits, and the cache still sees one caller at a time, as it requires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from cachepoint.cache.plan import CachePlan, PromptCache

T = TypeVar("T")


class CacheCalls:
    def __init__(self, cache: PromptCache) -> None:
        self.cache = cache
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cachepoint-cache") if cache.blocking else None

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._thread is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, partial(fn, *args))

    async def plan(self, fn: Callable[..., CachePlan], *args: object) -> CachePlan:
        """A plan pins what it will read: if the caller goes away while the plan is being made, it is released."""
        if self._thread is None:
            return fn(*args)
        future = asyncio.get_running_loop().run_in_executor(self._thread, partial(fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_orphan)
            raise

    def release(self, plan: CachePlan) -> None:
        """Never waits (it runs in `finally` blocks, also while a call is being cancelled): in place, or queued on
        the cache's thread, which runs calls in order, so every later call sees it done."""
        if self._thread is None:
            self.cache.release(plan)
        else:
            self._thread.submit(self.cache.release, plan)

    def _release_orphan(self, future: asyncio.Future[CachePlan]) -> None:
        if not future.cancelled() and future.exception() is None and self._thread is not None:
            self._thread.submit(self.cache.release, future.result())

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
