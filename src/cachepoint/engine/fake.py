"""A deterministic engine for unit tests and local development without a model.

Tokens are bytes (ID = byte + 3; special markers get IDs 0..2). A snapshot's bytes encode the exact
tokens it holds, so tests can check that a restore really resumed from the right prefix. The output
is a pure function of the prompt tokens and the seed: equal prompts give equal text.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Iterator

from cachepoint.engine.protocol import EngineEvent, Finished, FinishReason, GenerateJob, Prefilled, Snapshot

EOS = 2
_SPECIALS = {"<|im_start|>": 0, "<|im_end|>": EOS, "<|eot|>": 1}
_WORDS = [b" alpha", b" beta", b" gamma", b" delta", b" cache", b" point", b".", b" ok"]
BYTES_PER_TOKEN = 4
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(m) for m in _SPECIALS) + ")")


class FakeEngine:
    def __init__(
        self,
        context_tokens: int = 8192,
        output_tokens: int = 12,
        prefill_s_per_token: float = 0.0,
        decode_s_per_token: float = 0.0,
    ) -> None:
        self._context_tokens = context_tokens
        self._output_tokens = output_tokens
        self._prefill_s_per_token = prefill_s_per_token  # simulated costs: benchmarks of routing, not of the CPU
        self._decode_s_per_token = decode_s_per_token
        self.jobs: list[GenerateJob] = []
        self.fail_next: Exception | None = None

    @property
    def context_tokens(self) -> int:
        return self._context_tokens

    @property
    def kv_bytes_per_token(self) -> int:
        return BYTES_PER_TOKEN

    @property
    def max_token_bytes(self) -> int:
        return max(len(word) for word in _WORDS)

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """Linear in the text (a 5 MB text once took minutes with a quadratic loop)."""
        if not special:
            return [b + 3 for b in text.encode()]
        tokens: list[int] = []
        for piece in _SPECIAL_SPLIT.split(text):
            marker = _SPECIALS.get(piece)
            tokens += [marker] if marker is not None else [b + 3 for b in piece.encode()]
        return tokens

    def token_bytes(self, token_id: int) -> bytes:
        if token_id >= 3 + 256:
            return _WORDS[(token_id - 259) % len(_WORDS)]
        if token_id >= 3:
            return bytes([token_id - 3])
        return b""

    def run(self, job: GenerateJob) -> Iterator[EngineEvent]:
        self.jobs.append(job)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if job.restore is not None:
            restored = decode_snapshot(job.restore)[: job.restore_tokens]
            if tuple(restored) != job.tokens[: job.restore_tokens]:
                raise RuntimeError("restored snapshot does not hold the prompt's prefix")
        evaluated = len(job.tokens) - job.restore_tokens
        time.sleep(evaluated * self._prefill_s_per_token)
        snapshots = tuple(encode_snapshot(job.tokens[:t]) for t in job.capture_at)
        yield Prefilled(snapshots, max(evaluated, 1), 0.0, engine_cached_tokens=job.restore_tokens)
        yield from self._decode(job)

    def _decode(self, job: GenerateJob) -> Iterator[EngineEvent]:
        seed = hashlib.sha256(struct.pack(f"<{len(job.tokens)}I", *job.tokens) + bytes([job.sampling.seed % 256]))
        room = self._context_tokens - len(job.tokens)
        max_tokens = job.sampling.max_tokens or 0
        limit = min(self._output_tokens, max_tokens, room)
        for n in range(limit):
            if job.cancel.is_set():
                yield Finished(FinishReason.CANCELLED)
                return
            time.sleep(self._decode_s_per_token)
            yield 259 + seed.digest()[n % 32]
        yield Finished(_finish_reason(limit, max_tokens, room))


def _finish_reason(produced: int, max_tokens: int, room: int) -> FinishReason:
    if produced == max_tokens:
        return FinishReason.MAX_TOKENS
    return FinishReason.CONTEXT_FULL if produced == room else FinishReason.END_OF_TURN


def encode_snapshot(tokens: tuple[int, ...]) -> Snapshot:
    data = struct.pack(f"<{len(tokens)}I", *tokens)
    return Snapshot(data, len(tokens))


def decode_snapshot(snapshot: Snapshot) -> list[int]:
    return list(struct.unpack(f"<{snapshot.num_tokens}I", snapshot.data))
