"""The batched engine's llama.cpp half: one context whose KV holds one stream per slot (a sequence each).

- Slot `s` is llama.cpp sequence `s`, alone in KV stream `s` (`kv_unified=False`), laid out exactly as
  the single-sequence engine lays out its sequence 0. That is what keeps greedy output identical to it;
  see `llamacpp_batched.py` for why a unified KV does not.
- llama.cpp cuts a batch into one micro-batch per run of consecutive sequence ids, so `decode` wants its
  rows in slot order and the scheduler keeps the busy slots at 0..k-1 (`move` fills a hole).
- Snapshots leave here in the single-sequence layout (one KV stream) and are converted back on restore,
  so either engine restores the other's. The only difference is the stream count in the header and an
  empty entry per other stream; `_one_stream` and `_all_streams` check the layout they rewrite.
- Restores and moves go through one scratch buffer the context keeps (as large as the largest state seen,
  at most one slot's full KV): a fresh 94 MB buffer per restore of a 4k snapshot cost ~80 ms in page
  faults and zeroing, ten times the copy itself, and 8 restores in a row delayed every first token.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
from llama_cpp import _internals

from cachepoint.engine.llamacpp import LlamaVocab, VocabTokens, measure_kv_bytes_per_token, measured
from cachepoint.engine.protocol import Snapshot
from cachepoint.types import SamplingParams

T = TypeVar("T")
_HEADER = 8  # bytes before the stream count in a sequence's state (written by llama_state_seq_get_data)
_PADDING = 256  # llama.cpp rounds a context up to this many cells


@dataclass(frozen=True)
class Row:
    """One slot's tokens in a batch, at positions `first_pos`...; `logits` for its last token."""

    slot: int
    tokens: Sequence[int]
    first_pos: int
    logits: bool


class SlotContext(VocabTokens):
    """A model and one llama.cpp context with `slots` sequences. It is a `TokenSource`. Called from one
    thread at a time, except the vocabulary's methods, which are thread-safe."""

    def __init__(
        self,
        model_path: Path,
        *,
        slots: int,
        context_tokens: int,
        threads: int,
        batch_tokens: int,
        flash_attention: bool,
    ) -> None:
        _quiet_llama_cpp()
        self.slots = slots
        self.batch_tokens = batch_tokens
        self._model: Any = _internals.LlamaModel(path_model=str(model_path), params=_model_params(), verbose=False)
        params = _context_params(slots, context_tokens, threads, batch_tokens + slots, flash_attention)
        self._ctx: Any = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = llama_cpp.llama_batch_init(batch_tokens + slots, 0, 1)
        self.vocab = LlamaVocab(self._model)
        self._context_tokens = int(llama_cpp.llama_n_ctx_seq(self._ctx.ctx))
        self._scratch: ctypes.Array[ctypes.c_uint8] | None = None  # see `_scratch_buffer`
        key = (str(model_path), context_tokens)
        self._kv_bytes_per_token, self._max_token_bytes = measured(key, self._measure)

    @property
    def context_tokens(self) -> int:
        """Per slot: the same figure the single-sequence engine reports for the same setting."""
        return self._context_tokens

    def decode(self, rows: Sequence[Row]) -> list[int]:
        """One llama_decode over all rows (in slot order); returns each row's last batch index (for `sample`)."""
        batch, last = self._batch, []
        batch.n_tokens = 0
        for row in rows:
            for i, token in enumerate(row.tokens):
                n = batch.n_tokens
                batch.token[n], batch.pos[n], batch.n_seq_id[n], batch.logits[n] = token, row.first_pos + i, 1, 0
                batch.seq_id[n][0] = row.slot
                batch.n_tokens = n + 1
            batch.logits[batch.n_tokens - 1] = row.logits
            last.append(batch.n_tokens - 1)
        if (status := llama_cpp.llama_decode(self._ctx.ctx, batch)) != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        return last

    def sample(self, sampler: Sampler, index: int) -> int:
        return int(llama_cpp.llama_sampler_sample(sampler.chain, self._ctx.ctx, index))

    def truncate(self, slot: int, num_tokens: int) -> None:
        """Keep the slot's first `num_tokens` positions (0: clear it)."""
        llama_cpp.llama_memory_seq_rm(self._memory, slot, num_tokens, -1)

    def move(self, source: int, target: int) -> None:
        """Move a sequence into an empty slot, at once. (llama_memory_seq_cp across streams copies during the
        next decode, by which time a new job may have been restored into the source stream.)"""
        size = int(llama_cpp.llama_state_seq_get_size(self._ctx.ctx, source))
        buf = self._scratch_buffer(size)
        written = int(llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buf, size, source))
        self.truncate(source, 0)
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buf, written, target) == 0:
            raise RuntimeError("llama.cpp refused to move a sequence")

    def num_tokens(self, slot: int) -> int:
        """Positions the slot's sequence holds (0 when cleared)."""
        return int(llama_cpp.llama_memory_seq_pos_max(self._memory, slot)) + 1

    def export(self, slot: int, num_tokens: int) -> Snapshot:
        """The slot's KV, which holds exactly `num_tokens` tokens, in the single-sequence layout."""
        return Snapshot(_one_stream(memoryview(self._state(slot)).cast("B"), slot, self.slots), num_tokens)

    def restore(self, slot: int, snapshot: Snapshot) -> None:
        state = memoryview(snapshot.data).cast("B")
        buf = self._scratch_buffer(len(state) + 4 * (self.slots - 1))
        size = _all_streams(state, self.slots, memoryview(buf).cast("B"))
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buf, size, slot) == 0:
            raise RuntimeError("llama.cpp refused the KV snapshot")

    def close(self) -> None:
        """Free the context and its KV; the vocabulary (the model) stays usable."""
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._scratch = None
        self._ctx.close()

    def _scratch_buffer(self, size: int) -> ctypes.Array[ctypes.c_uint8]:
        """The context's reusable buffer, at least `size` bytes (contents undefined). Its pages stay mapped,
        so a restore or a move copies once, at memory speed, instead of faulting in fresh pages."""
        if self._scratch is None or len(self._scratch) < size:
            self._scratch = None  # freed before the larger one is allocated
            self._scratch = (ctypes.c_uint8 * size)()
        return self._scratch

    def _state(self, slot: int) -> ctypes.Array[ctypes.c_uint8]:
        size = int(llama_cpp.llama_state_seq_get_size(self._ctx.ctx, slot))
        buf = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buf, size, slot))
        return buf if written == size else (ctypes.c_uint8 * written).from_buffer(buf)

    def _measure(self) -> tuple[int, int]:
        position = 0

        def evaluate(tokens: Sequence[int]) -> None:
            nonlocal position
            for start in range(0, len(tokens), self.batch_tokens):
                part = tokens[start : start + self.batch_tokens]
                self.decode([Row(0, part, position, False)])
                position += len(part)

        kv_bytes = measure_kv_bytes_per_token(self._ctx.ctx, evaluate, self.tokenize("a", special=False)[0])
        self.truncate(0, 0)
        return kv_bytes, self.vocab.longest_piece_bytes()


class Sampler:
    """A job's llama.cpp sampler chain: the links `Llama._init_sampler` builds for the single-sequence
    engine, less the ones that engine leaves inert (penalties 1.0, typical 1.0, min_p 0). Free with `close`."""

    def __init__(self, params: SamplingParams) -> None:
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        for link in _links(params):
            llama_cpp.llama_sampler_chain_add(self.chain, link)

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self.chain)


def _links(params: SamplingParams) -> list[object]:
    if params.temperature == 0:
        return [llama_cpp.llama_sampler_init_greedy()]
    if params.temperature < 0:
        return [llama_cpp.llama_sampler_init_dist(params.seed)]
    return [
        llama_cpp.llama_sampler_init_top_k(params.top_k),
        llama_cpp.llama_sampler_init_top_p(params.top_p, 1),
        llama_cpp.llama_sampler_init_temp(params.temperature),
        llama_cpp.llama_sampler_init_dist(params.seed),
    ]


def _one_stream(state: memoryview, stream: int, num_streams: int) -> memoryview:
    """Rewrite an N-stream sequence state, in place and without copying, as the one-stream state the
    single-sequence engine writes: move the header up to just before the sequence's own stream entry."""
    before, after = 4 * stream, 4 * (num_streams - 1 - stream)
    body = _HEADER + 4 + before
    if _u32(state, _HEADER) != num_streams or any(state[_HEADER + 4 : body]) or any(state[len(state) - after :]):
        raise RuntimeError("unexpected llama.cpp sequence state layout")
    header = bytes(state[:_HEADER])
    state[before : before + _HEADER] = header
    state[before + _HEADER : body] = struct.pack("<I", 1)
    return state[before : len(state) - after]


def _all_streams(state: memoryview, num_streams: int, out: memoryview) -> int:
    """Write a one-stream sequence state into `out` as this context reads it: N streams, the others empty.
    Returns the bytes written."""
    if _u32(state, _HEADER) != 1:
        raise RuntimeError("unexpected llama.cpp sequence state layout")
    size = len(state) + 4 * (num_streams - 1)
    out[: len(state)] = state
    out[_HEADER : _HEADER + 4] = struct.pack("<I", num_streams)
    out[len(state) : size] = bytes(size - len(state))  # the empty streams' entries
    return size


def _u32(data: memoryview, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


@functools.cache
def _quiet_llama_cpp() -> None:
    """What `Llama(verbose=False)` does: load the backends once, keep llama.cpp's log to errors."""
    llama_cpp.llama_backend_init()
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


def _model_params() -> Any:
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    return params


def _context_params(slots: int, context_tokens: int, threads: int, batch_tokens: int, flash_attention: bool) -> Any:
    """As `Llama` builds its context, with one KV stream of `context_tokens` (rounded up as llama.cpp does
    for one sequence) per slot."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = slots * -(-context_tokens // _PADDING) * _PADDING
    params.n_seq_max = slots
    params.kv_unified = False
    params.n_batch = params.n_ubatch = batch_tokens
    params.n_threads = params.n_threads_batch = threads
    params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    return params
