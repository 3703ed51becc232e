"""Keeping CPU-heavy request work off the event loop, within bounds.

Two kinds of work, two pools:
- decoding (JSON parsing, validation, translation) holds the GIL for its whole length inside C code
  (`json.loads` of 24 MB of tiny objects takes seconds), so a thread cannot keep the loop responsive:
  bodies above `inline_bytes` are decoded in worker *processes*. Small bodies, whose worst case is a
  few milliseconds, are decoded in place: a process hop would cost more than it saves.
- rendering and tokenization run in threads: the tokenizers release the GIL in native code, and the
  Python part is bounded by the block limit, so the interpreter's switch interval keeps the loop live.

Both are admission-bounded: past `max_pending` waiting jobs, a request is refused at once
(ServiceUnavailable) instead of queueing without end. A worker process that dies is replaced.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from cachepoint.errors import ServiceUnavailableError, ValidationError

log = logging.getLogger(__name__)
T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class OffloadSettings:
    decode_processes: int = 2
    render_threads: int = 2
    max_pending: int = 64
    inline_bytes: int = 64 * 1024
    worker_memory_bytes: int = 4 * 2**30  # address-space cap of a decoding process


class Offload:
    def __init__(self, settings: OffloadSettings = OffloadSettings()) -> None:
        self.settings = settings
        self._threads = ThreadPoolExecutor(settings.render_threads, thread_name_prefix="render")
        self._processes: ProcessPoolExecutor | None = None  # started on the first large body
        self._pending = 0

    async def decode(self, fn: Callable[[bytes], T], raw: bytes) -> T:
        if len(raw) <= self.settings.inline_bytes:
            return fn(raw)
        with self._admitted():
            try:
                return await asyncio.wrap_future(self._process_pool().submit(fn, raw))
            except BrokenProcessPool:
                log.error("a decoding process died (body of %d bytes); replacing the pool", len(raw))
                self._processes = None
                raise ServiceUnavailableError("The request could not be processed. Try again.") from None
            except MemoryError:
                raise ValidationError("The request is too large to process.") from None

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        with self._admitted():
            return await asyncio.wrap_future(self._threads.submit(fn, *args))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:  # waits for a decode in progress (seconds at most), then the workers exit
            self._processes.shutdown(wait=True, cancel_futures=True)

    def _process_pool(self) -> ProcessPoolExecutor:
        if self._processes is None:
            # spawn, not fork: the server has engine threads, and a forked child would inherit their locks
            context = multiprocessing.get_context("spawn")
            self._processes = ProcessPoolExecutor(
                self.settings.decode_processes,
                mp_context=context,
                initializer=_limit_memory,
                initargs=(self.settings.worker_memory_bytes,),
            )
        return self._processes

    def _admitted(self) -> _Admission:
        return _Admission(self)


class _Admission:
    def __init__(self, offload: Offload) -> None:
        self.offload = offload

    def __enter__(self) -> None:
        if self.offload._pending >= self.offload.settings.max_pending:
            raise ServiceUnavailableError("Too many requests are being processed. Try again shortly.")
        self.offload._pending += 1

    def __exit__(self, *exc: object) -> None:
        self.offload._pending -= 1


def _limit_memory(num_bytes: int) -> None:
    """A decoding process may fail on a hostile body, but never take the machine's memory with it, and it
    never outlives the server (a killed server would otherwise leave it blocked on its queue for good)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = num_bytes if hard == resource.RLIM_INFINITY else min(num_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    _die_with_parent()


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still ends it
        pass
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(0)
