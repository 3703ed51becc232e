"""The llama.cpp engine (llama-cpp-python), the only module that imports it (with `llamacpp_slots.py`,
the batched engine's context, which shares `LlamaVocab` and the measurements below).

Design notes (measured; see the project's engine notes):
- One `Llama` per engine, sequence 0 only; the worker thread serialises jobs.
- KV snapshots use the per-sequence state API: `llama_state_seq_get_data` after prefilling up to a
  checkpoint, `llama_state_seq_set_data` + `llama_memory_seq_rm` to resume from any shorter prefix.
  `Llama.save_state` is not used: it copies a 100 MB scores array per snapshot.
- `Llama.detokenize` truncates long pieces (32-byte buffer); `token_bytes` uses a 512-byte buffer.
- Nothing is reused implicitly between jobs: a job starts from a cleared sequence or from the
  snapshot it names, so "cold" really is cold and a hit is the cache's doing.
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import llama_cpp

from cachepoint.engine.protocol import EngineEvent, Finished, FinishReason, GenerateJob, Prefilled, Snapshot

_SEQ = 0
_MEASURED: dict[tuple[str, int], tuple[int, int]] = {}  # (model, context) → (KV bytes per token, longest piece)


class LlamaVocab:
    """A loaded model's tokenizer and token pieces: what both llama.cpp engines share."""

    def __init__(self, model: Any) -> None:  # a llama_cpp._internals.LlamaModel
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model.model)

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        return list(self._model.tokenize(text.encode(), False, special))

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one per model for the process lifetime; pieces never change
    def token_bytes(self, token_id: int) -> bytes:
        buf = ctypes.create_string_buffer(512)
        n = llama_cpp.llama_token_to_piece(self._vocab, token_id, buf, len(buf), 0, False)
        return buf.raw[: max(n, 0)]

    def is_end_of_generation(self, token_id: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token_id))

    def longest_piece_bytes(self) -> int:
        return max(len(self.token_bytes(t)) for t in range(llama_cpp.llama_vocab_n_tokens(self._vocab)))


def measured(key: tuple[str, int], measure: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """(KV bytes per token, longest piece) of a model and context: seconds of work, so every engine of the
    same model and context (each Region's, single or batched) shares the first answer. It is measured on a
    thread that then exits: a decode leaves an OpenMP team on its thread for that thread's lifetime."""
    if key not in _MEASURED:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-measure") as passing:
            _MEASURED[key] = passing.submit(measure).result()
    return _MEASURED[key]


def measure_kv_bytes_per_token(ctx: Any, evaluate: Callable[[Sequence[int]], None], token: int) -> int:
    """The state size of sequence 0 after 1 and after 65 tokens; the difference is the per-token KV cost.
    `evaluate` appends tokens to sequence 0, which starts empty; the caller clears it afterwards."""
    evaluate([token])
    one = llama_cpp.llama_state_seq_get_size(ctx, _SEQ)
    evaluate([token] * 64)
    more = llama_cpp.llama_state_seq_get_size(ctx, _SEQ)
    return int(more - one) // 64


class VocabTokens:
    """The token-source half both llama.cpp engines share: a `LlamaVocab` and the measured figures."""

    vocab: LlamaVocab
    _kv_bytes_per_token: int
    _max_token_bytes: int

    @property
    def kv_bytes_per_token(self) -> int:
        return self._kv_bytes_per_token

    @property
    def max_token_bytes(self) -> int:
        return self._max_token_bytes

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        return self.vocab.tokenize(text, special=special)

    def token_bytes(self, token_id: int) -> bytes:
        return self.vocab.token_bytes(token_id)


class LlamaCppEngine(VocabTokens):
    def __init__(
        self,
        model_path: Path,
        *,
        context_tokens: int = 8192,
        threads: int = 2,
        batch_tokens: int = 512,
        ubatch_tokens: int | None = None,
        flash_attention: bool = False,
    ):
        self._llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=context_tokens,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=batch_tokens,
            n_ubatch=ubatch_tokens or batch_tokens,
            logits_all=False,
            flash_attn=flash_attention,
            verbose=False,
        )
        self.vocab = LlamaVocab(self._llm._model)
        self._kv_bytes_per_token, self._max_token_bytes = measured((str(model_path), context_tokens), self._measure)

    @property
    def context_tokens(self) -> int:
        return self._llm.n_ctx()

    def run(self, job: GenerateJob) -> Iterator[EngineEvent]:
        started = time.perf_counter()
        start = self._start_from(job)
        restored = time.perf_counter()
        snapshots, snapshot_s = self._prefill(job, start)
        total_s = time.perf_counter() - started
        yield Prefilled(snapshots, len(job.tokens) - start, total_s, restored - started, snapshot_s, start)
        yield from self._decode(job)

    def _start_from(self, job: GenerateJob) -> int:
        """Restore the job's snapshot (or clear) and return how many prompt tokens are already in the KV.
        At least the last prompt token is always re-evaluated, to get its logits."""
        start = min(job.restore_tokens, len(job.tokens) - 1)
        if job.restore is not None and start > 0:
            self._restore(job.restore)
        llama_cpp.llama_memory_seq_rm(self._memory(), _SEQ, start, -1)
        self._llm.n_tokens = start
        self._llm.input_ids[:start] = job.tokens[:start]
        return start

    def _prefill(self, job: GenerateJob, start: int) -> tuple[tuple[Snapshot, ...], float]:
        snapshots: list[Snapshot] = []
        position, snapshot_s = start, 0.0
        for cut in sorted(set(job.capture_at)) + [len(job.tokens)]:
            if cut > position:
                self._llm.eval(job.tokens[position:cut])
                position = cut
            if cut in job.capture_at:
                taken = time.perf_counter()
                snapshots.append(self._snapshot(cut))
                snapshot_s += time.perf_counter() - taken
        order = {t: i for i, t in enumerate(job.capture_at)}
        return tuple(sorted(snapshots, key=lambda s: order[s.num_tokens])), snapshot_s

    def _decode(self, job: GenerateJob) -> Iterator[EngineEvent]:
        params = job.sampling
        self._llm.set_seed(params.seed)
        sampler = self._llm._init_sampler(top_k=params.top_k, top_p=params.top_p, min_p=0.0, temp=params.temperature)
        for _ in range(params.max_tokens or 0):
            if job.cancel.is_set():
                yield Finished(FinishReason.CANCELLED)
                return
            token = sampler.sample(self._llm._ctx, -1)
            if self.vocab.is_end_of_generation(token):
                yield Finished(FinishReason.END_OF_TURN)
                return
            yield token
            if self._llm.n_tokens >= self.context_tokens:
                yield Finished(FinishReason.CONTEXT_FULL)
                return
            self._llm.eval([token])
        yield Finished(FinishReason.MAX_TOKENS)

    def _snapshot(self, num_tokens: int) -> Snapshot:
        """Export straight into a fresh buffer the snapshot then owns (no bytes() copy)."""
        ctx = self._llm.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, _SEQ)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, _SEQ)
        return Snapshot(memoryview(buf).cast("B")[:written], num_tokens)

    def _restore(self, snapshot: Snapshot) -> None:
        if llama_cpp.llama_state_seq_set_data(self._llm.ctx, _pointer(snapshot.data), snapshot.num_bytes, _SEQ) == 0:
            raise RuntimeError("llama.cpp refused the KV snapshot")

    def _memory(self) -> Any:
        return llama_cpp.llama_get_memory(self._llm.ctx)

    def _measure(self) -> tuple[int, int]:
        llama_cpp.llama_memory_clear(self._memory(), True)
        self._llm.n_tokens = 0
        kv_bytes = measure_kv_bytes_per_token(self._llm.ctx, self._llm.eval, self.tokenize("a", special=False)[0])
        llama_cpp.llama_memory_clear(self._memory(), True)
        self._llm.n_tokens = 0
        return kv_bytes, self.vocab.longest_piece_bytes()


def _pointer(data: bytes | memoryview) -> ctypes._Pointer[ctypes.c_uint8]:
    """A pointer to the snapshot's bytes without copying them."""
    if isinstance(data, memoryview) and not data.readonly:
        array = (ctypes.c_uint8 * data.nbytes).from_buffer(data)
        return ctypes.cast(array, ctypes.POINTER(ctypes.c_uint8))
    return ctypes.cast(ctypes.c_char_p(bytes(data)), ctypes.POINTER(ctypes.c_uint8))
