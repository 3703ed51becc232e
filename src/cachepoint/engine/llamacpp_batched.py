"""Continuous batching on llama.cpp: several jobs decoded together in one context, one llama_decode a step.

Design (measured on the project's 2-core machine with SmolLM2-135M; see the engine notes):
- Slots. `slots` sequences share one context (`llamacpp_slots.SlotContext`). A job holds one slot from
  admission to its end, when its sequence is cleared. Jobs wait for a free slot in arrival order, up to
  `max_queued_jobs` queued or running (beyond that `stream` refuses at once, as `EngineWorker` does).
- KV. Each slot has its own KV stream of `context_tokens` cells, so the context holds slots × context_tokens
  cells: 8 × 8192 × 23 KB ≈ 1.5 GB per Region with the embedded model, against 184 MB for one sequence.
  Lower `context_tokens` to fit. A job waits for a slot only, never for cells, and is never preempted.
  A unified KV (one pool shared by all slots, admission by free cells) was built and rejected: a
  sequence's attention sums then run over cells interleaved with other sequences', rounding differs, and
  greedy output left the single-sequence engine's after 5-20 tokens for 7 of 8 prompts decoded together.
  In its own stream a sequence is laid out as in the single-sequence engine, so output is identical.
- Steps. The scheduler thread builds one batch per step: the next token of every decoding slot, plus up
  to `batch_tokens` prompt tokens shared evenly among prefilling slots (chunked prefill: a long cold prefill
  slows the others' decoding but never stops it). A chunk ends at a capture offset, where the slot's KV
  is exported. One llama_decode, then one sample per slot whose logits were asked for, then events.
- Busy slots are kept at 0..k-1: llama.cpp computes consecutive sequence ids together and splits the
  batch at every gap, so a slot freed below the last busy one gets a waiting job or the last sequence.
- Threads. The scheduler thread runs while there is work and ends when idle (`_has_work` says why); the
  next job starts a new one. Events reach each job's asyncio task through `worker.EventChannel`, as from
  `EngineWorker`. A job that fails to start fails alone; a failed decode fails the jobs in that batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path

from cachepoint.engine.llamacpp_slots import Row, Sampler, SlotContext
from cachepoint.engine.protocol import EngineEvent, Finished, FinishReason, GenerateJob, Prefilled, Runner, Snapshot
from cachepoint.engine.worker import EventChannel, JobCount, relay
from cachepoint.errors import ServiceUnavailableError
from cachepoint.settings import EngineSettings


@dataclass(eq=False)
class _Sequence:
    """A job's progress. `tokens` is the prompt, then each generated token once it is due to be fed."""

    job: GenerateJob
    channel: EventChannel
    tokens: list[int]
    captures: list[int]  # capture offsets still to take, ascending
    slot: int | None = None
    sampler: Sampler | None = None
    num_past: int = 0  # tokens of `tokens` in the slot's KV
    num_restored: int = 0
    num_generated: int = 0
    prefilled: bool = False
    snapshots: list[Snapshot] = field(default_factory=list)
    started_s: float = 0.0
    restore_s: float = 0.0
    snapshot_s: float = 0.0

    @property
    def stop(self) -> int:
        """Where its next chunk must end: the next capture offset, else the end of its known tokens."""
        return self.captures[0] if self.captures else len(self.tokens)


class BatchedRunner:
    """A `Runner` over a `SlotContext`, which it owns. `engine` stays usable for tokenizing after `close`."""

    def __init__(self, engine: SlotContext, *, name: str, max_queued_jobs: int = 64) -> None:
        self.engine = engine
        self.name = name
        self.last_prefill: Prefilled | None = None  # timings of the latest prefill, for stats and benchmarks
        self._jobs = JobCount(max_queued_jobs)
        self._waiting: deque[_Sequence] = deque()
        self._slots: list[_Sequence | None] = [None] * engine.slots  # touched by the scheduler thread only
        self._lock = threading.Lock()  # guards `_waiting`, `_closed` and `_thread`
        self._closed = False
        self._thread: threading.Thread | None = None  # the scheduler, while there is work

    @property
    def num_jobs(self) -> int:
        """Jobs queued or running: the load figure routing looks at."""
        return self._jobs.value

    async def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        self._jobs.admit()
        channel = EventChannel(self.name)
        with self._lock:
            if self._closed:
                self._jobs.release()
                raise ServiceUnavailableError("The engine is shutting down.")  # as the threaded runner says
            self._waiting.append(_Sequence(job, channel, list(job.tokens), sorted(set(job.capture_at))))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"engine-{self.name}", daemon=True)
                self._thread.start()
        async with aclosing(relay(channel, job, self)) as events:  # closed at once: a cancel is not left to GC
            async for event in events:
                yield event

    def close(self) -> None:
        """Cancel what is queued or running, stop the scheduler, free the KV."""
        with self._lock:
            self._closed, thread = True, self._thread
        if thread is not None:
            thread.join()
        self.engine.close()

    def _loop(self) -> None:
        while self._has_work():
            try:
                self._start_waiting()
                self._end_cancelled()
                self._compact()
                self._step()
            except BaseException as error:  # the boundary: every job in the failed step learns of it
                for seq in self._busy():
                    self._end(seq, error=error)
        if self._closed:
            for seq in self._busy():
                self._end(seq, FinishReason.CANCELLED)
            while self._waiting:
                self._end(self._waiting.popleft())

    def _has_work(self) -> bool:
        """False once closed, or idle: then this thread ends, and `stream` starts another for the next job.
        llama.cpp's OpenMP keeps a thread team per thread that ever decoded, for as long as it lives; on
        2 cores a second team, even idle, makes every barrier sleep instead of spin (decode ran at 40%
        speed). So an idle Region's runner keeps no thread, and its context is measured on a passing one."""
        with self._lock:
            if self._closed or self._waiting or self._busy():
                return not self._closed
            self._thread = None
            return False

    def _busy(self) -> list[_Sequence]:
        return [seq for seq in self._slots if seq is not None]

    def _start_waiting(self) -> None:
        for slot in [i for i, seq in enumerate(self._slots) if seq is None]:
            if (seq := self._next_waiting()) is None:
                return
            try:
                self._start(seq, slot)
            except Exception as error:  # a refused snapshot, a prompt beyond the context: this job alone
                self._end(seq, error=error)

    def _next_waiting(self) -> _Sequence | None:
        """The next queued job; one cancelled while queued ends here without an event, never started."""
        while True:
            with self._lock:
                if not self._waiting:
                    return None
                seq = self._waiting.popleft()
            if not seq.job.cancel.is_set():
                return seq
            self._end(seq)

    def _start(self, seq: _Sequence, slot: int) -> None:
        """Restore the job's snapshot (or start empty); at least the last prompt token is re-evaluated."""
        job, seq.slot, seq.started_s = seq.job, slot, time.perf_counter()
        self._slots[slot] = seq
        if len(job.tokens) > self.engine.context_tokens:
            raise ValueError(f"{len(job.tokens)} prompt tokens exceed the {self.engine.context_tokens}-token context")
        start = min(job.restore_tokens, len(job.tokens) - 1)
        if job.restore is not None and start > 0:
            self.engine.restore(slot, job.restore)
        self.engine.truncate(slot, start)
        seq.num_past = seq.num_restored = start
        seq.sampler = Sampler(job.sampling)
        seq.restore_s = time.perf_counter() - seq.started_s

    def _end_cancelled(self) -> None:
        for seq in self._busy():
            if seq.job.cancel.is_set():
                self._end(seq, FinishReason.CANCELLED)

    def _compact(self) -> None:
        """Move the last busy sequences down into the free slots below them."""
        for seq in reversed(self._busy()):
            free = self._slots.index(None) if None in self._slots else len(self._slots)
            if seq.slot is None or seq.slot < free:
                return
            self.engine.move(seq.slot, free)
            self._slots[seq.slot], self._slots[free], seq.slot = None, seq, free

    def _step(self) -> None:
        work = self._rows()
        if not work:
            return
        indices = self.engine.decode([row for _, row in work])
        for (seq, row), index in zip(work, indices, strict=True):
            seq.num_past += len(row.tokens)
            if seq.captures and seq.num_past == seq.captures[0]:
                self._capture(seq, row.slot)
            if row.logits:
                self._next_token(seq, index)

    def _rows(self) -> list[tuple[_Sequence, Row]]:
        """Every decoding slot's next token and a fair share of the prefill budget, in slot order."""
        busy = self._busy()
        prefilling = [seq for seq in busy if not seq.prefilled]
        needs = [seq.stop - seq.num_past for seq in prefilling]
        grants = dict(zip(prefilling, share(self.engine.batch_tokens, needs), strict=True))
        work = []
        for seq in busy:
            n = grants.get(seq, 1)
            if n and seq.slot is not None:
                end = seq.num_past + n
                work.append((seq, Row(seq.slot, seq.tokens[seq.num_past : end], seq.num_past, end == len(seq.tokens))))
        return work

    def _capture(self, seq: _Sequence, slot: int) -> None:
        taken = time.perf_counter()
        seq.snapshots.append(self.engine.export(slot, seq.num_past))
        seq.captures.pop(0)
        seq.snapshot_s += time.perf_counter() - taken

    def _next_token(self, seq: _Sequence, index: int) -> None:
        """The same checks, in the same order, as `LlamaCppEngine._decode`."""
        job, max_tokens = seq.job, seq.job.sampling.max_tokens or 0
        if not seq.prefilled:
            seq.prefilled = True
            seq.channel.put(self._prefilled(seq))
        if seq.num_generated >= max_tokens:
            return self._end(seq, FinishReason.MAX_TOKENS)
        if job.cancel.is_set():
            return self._end(seq, FinishReason.CANCELLED)
        assert seq.sampler is not None
        token = self.engine.sample(seq.sampler, index)
        if self.engine.vocab.is_end_of_generation(token):
            return self._end(seq, FinishReason.END_OF_TURN)
        seq.channel.put(token)
        seq.num_generated += 1
        if seq.num_past >= self.engine.context_tokens:
            return self._end(seq, FinishReason.CONTEXT_FULL)
        if seq.num_generated >= max_tokens:
            return self._end(seq, FinishReason.MAX_TOKENS)
        seq.tokens.append(token)

    def _prefilled(self, seq: _Sequence) -> Prefilled:
        order = {t: i for i, t in enumerate(seq.job.capture_at)}
        snapshots = tuple(sorted(seq.snapshots, key=lambda s: order[s.num_tokens]))
        prefill_s = time.perf_counter() - seq.started_s
        num_evaluated = len(seq.job.tokens) - seq.num_restored
        return Prefilled(snapshots, num_evaluated, prefill_s, seq.restore_s, seq.snapshot_s, seq.num_restored)

    def _end(self, seq: _Sequence, reason: FinishReason | None = None, *, error: BaseException | None = None) -> None:
        """Deliver the job's last event (none if it never started), free its slot and sampler, close."""
        if error is not None:
            seq.channel.fail(error)
        elif reason is not None:
            seq.channel.put(Finished(reason))
        if seq.slot is not None:
            self._slots[seq.slot] = None
            self.engine.truncate(seq.slot, 0)
            seq.slot = None
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None
        self._jobs.release()
        seq.channel.close()


def share(budget: int, needs: Sequence[int]) -> list[int]:
    """Split `budget` tokens as evenly as `needs` allow (max-min fair): what one need leaves, the rest share."""
    grants = [0] * len(needs)
    for k, i in enumerate(sorted(range(len(needs)), key=needs.__getitem__)):
        grants[i] = min(needs[i], budget // (len(needs) - k))
        budget -= grants[i]
    return grants


class BatchedBackend:
    """One `BatchedRunner` per Region, each with its own context of `settings.slots` sequences."""

    def __init__(self, settings: EngineSettings, model_path: Path) -> None:
        self.settings = settings
        self._model_path = model_path
        self._spare: SlotContext | None = None  # built for tokenizing before any runner; becomes the first's
        self._first: SlotContext | None = None

    @property
    def tokenizer(self) -> SlotContext:
        if self._first is None:
            self._spare = self._first = self._context()
        return self._first

    def runner(self, name: str) -> Runner:
        context, self._spare = self._spare or self._context(), None
        self._first = self._first or context
        return BatchedRunner(context, name=name, max_queued_jobs=self.settings.max_queued_jobs)

    def describe(self) -> dict[str, object]:
        return {"kind": self.settings.kind, "in_process": True, "slots": self.settings.slots}

    def close(self) -> None:
        pass  # the runners own their contexts and are closed by the pool

    def _context(self) -> SlotContext:
        s = self.settings
        return SlotContext(
            self._model_path,
            slots=s.slots,
            context_tokens=s.context_tokens,
            threads=s.threads,
            batch_tokens=s.batch_tokens,
            flash_attention=s.flash_attention,
        )
