"""The engine seam: what cachepoint needs from a model runtime, and nothing more.

Contract:
- `tokenize` and `token_bytes` are pure and thread-safe.
- `run(job)` is called from one worker thread at a time (see `worker.py`); it prefills `job.tokens`
  (starting from `job.restore` when given, re-evaluating at least the last prompt token for logits),
  yields one `Prefilled` carrying a `Snapshot` per offset in `job.capture_at`, then yields generated
  token IDs until end of turn, `max_tokens`, the context limit, or `job.cancel` is set.
- A `Snapshot` is the engine's KV state for its first `num_tokens` tokens; it can serve any shorter
  prefix of itself (the engine truncates after restoring). Its bytes are owned by the caller.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from cachepoint.types import SamplingParams


@dataclass(frozen=True)
class Snapshot:
    """`data` is any contiguous byte buffer (bytes, or a memoryview over engine-owned memory, which
    saves a copy of tens of MB per snapshot). An engine that keeps the KV itself (vLLM) hands out empty
    markers with `nominal_bytes`, the KV they stand for, so the cache budget means the same on every engine.
    A snapshot kept by another process (a `cachepoint node`) is a marker too: `holder` names that replica and
    `ref` the snapshot there; only that replica can restore it. An empty `holder` is this process."""

    data: bytes | memoryview = field(repr=False)
    num_tokens: int
    nominal_bytes: int | None = None
    holder: str = ""
    ref: str = ""

    @property
    def num_bytes(self) -> int:
        return self.nominal_bytes if self.nominal_bytes is not None else memoryview(self.data).nbytes


class FinishReason(StrEnum):
    END_OF_TURN = "end_of_turn"
    MAX_TOKENS = "max_tokens"
    CONTEXT_FULL = "context_full"
    CANCELLED = "cancelled"


@dataclass
class GenerateJob:
    tokens: tuple[int, ...]
    sampling: SamplingParams
    restore: Snapshot | None = None
    restore_tokens: int = 0
    capture_at: tuple[int, ...] = ()
    cancel: threading.Event = field(default_factory=threading.Event)
    salt: str = ""  # the cache scope's digest: engines that cache by themselves keep tenants apart with it

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ValueError("a job needs at least one prompt token")
        if self.restore is None and self.restore_tokens:
            raise ValueError("restore_tokens without a snapshot")
        if self.restore is not None and not 0 < self.restore_tokens <= self.restore.num_tokens:
            raise ValueError("restore_tokens must be within the snapshot")
        if any(not self.restore_tokens < t <= len(self.tokens) for t in self.capture_at):
            raise ValueError("capture offsets must lie after the restored prefix and within the prompt")


@dataclass(frozen=True)
class Prefilled:
    """Prefill is done. `prefill_s` is the whole step; `restore_s` and `snapshot_s` are the parts of it
    spent importing and exporting KV state."""

    snapshots: tuple[Snapshot, ...]
    num_evaluated_tokens: int
    prefill_s: float
    restore_s: float = 0.0
    snapshot_s: float = 0.0
    engine_cached_tokens: int | None = None  # prompt tokens the engine physically reused; None: not known yet


@dataclass(frozen=True)
class Finished:
    """`engine_cached_tokens`, when set, is what an engine that reports usage only at the end reused."""

    reason: FinishReason
    engine_cached_tokens: int | None = None


EngineEvent = Prefilled | int | Finished


class ReplicaUnavailable(Exception):
    """A remote replica could not take the job (unreachable, refused, died) before its first event: the
    caller may route the job elsewhere, since nothing of it was seen yet."""

    def __init__(self, replica: str, detail: str) -> None:
        super().__init__(f"replica {replica}: {detail}")
        self.replica = replica


class TokenSource(Protocol):
    """What rendering and text streaming need from a model: its tokenizer and its limits."""

    @property
    def context_tokens(self) -> int: ...

    @property
    def kv_bytes_per_token(self) -> int: ...

    @property
    def max_token_bytes(self) -> int:
        """The longest piece any token decodes to: a cheap lower bound on a text's token count."""
        ...

    def tokenize(self, text: str, *, special: bool) -> list[int]: ...

    def token_bytes(self, token_id: int) -> bytes: ...


class Runner(Protocol):
    """One Region's engine as the service drives it: an async stream of events per job, and its load."""

    @property
    def engine(self) -> TokenSource: ...

    @property
    def num_jobs(self) -> int: ...

    @property
    def last_prefill(self) -> Prefilled | None: ...

    def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]: ...

    def close(self) -> None: ...


class Engine(TokenSource, Protocol):
    """A synchronous in-process engine; `worker.EngineWorker` runs it on its own thread as a `Runner`."""

    def run(self, job: GenerateJob) -> Iterator[EngineEvent]: ...
