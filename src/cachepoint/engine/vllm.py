"""The vLLM engine: cachepoint in front of vLLM's OpenAI-compatible server, over HTTP (never `import vllm`).

- Prompts are rendered by cachepoint and tokenized with the model's own tokenizer (`hf_tokenizer.py`), then
  sent as token IDs to `/v1/completions`, streamed, with usage; output arrives as token IDs too
  (`return_token_ids`), so text is assembled and stop sequences are found exactly as on llama.cpp.
- vLLM keeps the KV itself (automatic prefix caching): cachepoint's planner still decides Bedrock's usage
  from its own index, and stores no bytes (its snapshots are empty markers). The physical reuse vLLM
  reports (`prompt_tokens_details.cached_tokens`) travels beside it as `engine_cached`. The two can
  differ: a Bedrock "read" that vLLM had already evicted is recomputed; a Bedrock "write" may be fast
  because vLLM kept blocks that Bedrock's TTL would have expired.
- Tenants never share KV physically: every request carries `cache_salt`, one value per (account,
  Region, base model).
- Connection failures, error statuses, timeouts and a server that dies mid-stream are engine failures
  (`ModelErrorException`, or a stream exception frame); the next request goes through once vLLM is back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx

from cachepoint.engine.hf_tokenizer import HfTokenizer
from cachepoint.engine.protocol import EngineEvent, Finished, FinishReason, GenerateJob, Prefilled, Snapshot
from cachepoint.engine.vllm_process import SERVED_NAME, ManagedVllm, vllm_dtype
from cachepoint.errors import ModelError, ServiceUnavailableError
from cachepoint.settings import EngineSettings

log = logging.getLogger(__name__)
FAILED = "The model failed to process the request."


class VllmBackend:
    """One vLLM server (managed here, or someone else's at `url`) for every Region of one engine name."""

    def __init__(self, settings: EngineSettings, log_path: Path, holder: str = "") -> None:
        self.settings = settings
        self.holder = holder  # a `vllm://` replica's name: its markers say only it holds their KV
        self.process = ManagedVllm(settings, log_path) if settings.managed else None
        self.url = self.process.url if self.process else str(settings.url).rstrip("/")
        self.model = SERVED_NAME if self.process else settings.served_model
        kv_dtype_bytes = 4 if vllm_dtype(settings.dtype) == "float32" else 2  # vLLM's KV follows the model dtype
        config = settings.model_path / "config.json" if settings.model_path else None
        kv_bytes = kv_bytes_per_token(config, kv_dtype_bytes) if config else 0
        self._tokenizer = HfTokenizer(_tokenizer_path(settings), settings.context_tokens, kv_bytes)
        if self.process is not None:
            self.process.start()

    @property
    def tokenizer(self) -> HfTokenizer:
        return self._tokenizer

    def runner(self, name: str) -> VllmRunner:
        return VllmRunner(self, name)

    def describe(self) -> dict[str, object]:
        facts: dict[str, object] = {"kind": "vllm", "url": self.url, "available": self.available()}
        if self.process is not None:
            facts |= {"managed": True, "pid": self.process.pid, "restarts": self.process.num_restarts}
        return facts

    def available(self) -> bool:
        return self.process is None or self.process.ready.is_set()

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


class VllmRunner:
    """One Region's view of the shared server: its own load figure and queue bound; many jobs at once."""

    def __init__(self, backend: VllmBackend, name: str) -> None:
        self.backend = backend
        self.name = name
        self._num_jobs = 0
        self.last_prefill: Prefilled | None = None
        self._client: httpx.AsyncClient | None = None  # made on first use, inside the serving event loop

    @property
    def engine(self) -> HfTokenizer:
        return self.backend.tokenizer

    @property
    def num_jobs(self) -> int:
        return self._num_jobs

    async def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        if self._num_jobs >= self.backend.settings.max_queued_jobs:
            raise ServiceUnavailableError("The engine queue is full. Try your request again later.")
        if not self.backend.available():
            raise ModelError(FAILED)
        self._num_jobs += 1
        try:
            async for event in self._completion(job):
                yield event
        except (httpx.HTTPError, ValueError, KeyError) as error:
            log.error("vLLM request from %s failed: %r", self.name, error)
            raise ModelError(FAILED) from error
        finally:
            self._num_jobs -= 1

    async def _completion(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        wanted = job.sampling.max_tokens or 0
        room = self.engine.context_tokens - len(job.tokens)
        body = _request_body(self.backend.model, job, max(min(wanted, room), 1))
        started = time.perf_counter()
        reason, cached, produced, prefilled = FinishReason.CANCELLED, None, 0, False
        client = self._http()
        async with client.stream("POST", f"{self.backend.url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                detail = (await response.aread())[:500].decode(errors="replace")
                raise httpx.HTTPStatusError(f"{response.status_code}: {detail}", request=response.request,
                                            response=response)  # fmt: skip
            async for chunk in _chunks(response):
                for choice in chunk.get("choices", []):
                    if not prefilled:  # the first chunk: the prompt is in vLLM's KV
                        prefilled = True
                        yield self._prefilled(job, started)
                    for token in (choice.get("token_ids") or [])[: max(wanted - produced, 0)]:
                        produced += 1
                        yield int(token)
                    if choice.get("finish_reason"):
                        reason = _finish(choice["finish_reason"], wanted, room)
                if chunk.get("usage"):
                    cached = int((chunk["usage"].get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        yield Finished(reason if wanted else FinishReason.MAX_TOKENS, cached)

    def _prefilled(self, job: GenerateJob, started: float) -> Prefilled:
        size = self.engine.kv_bytes_per_token  # vLLM holds the KV; the markers only stand for its size
        holder = self.backend.holder
        markers = tuple(Snapshot(b"", t, nominal_bytes=t * size, holder=holder, ref=str(t)) for t in job.capture_at)
        self.last_prefill = Prefilled(markers, len(job.tokens), time.perf_counter() - started)
        return self.last_prefill

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self.backend.settings.request_timeout_s, connect=5.0)
            self._client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=None))
        return self._client

    def close(self) -> None:
        self._client = None  # its connections close with the event loop that owns them


def _request_body(model: str, job: GenerateJob, max_tokens: int) -> dict[str, Any]:
    s = job.sampling
    return {
        "model": model,
        "prompt": list(job.tokens),
        "max_tokens": max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k if s.top_k > 0 else -1,
        "seed": s.seed,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
        "cache_salt": job.salt or None,
    }


async def _chunks(response: httpx.Response) -> AsyncGenerator[dict[str, Any], None]:
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:].strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        if "error" in chunk:
            raise ValueError(f"vLLM error: {chunk['error']}")
        yield chunk


def _finish(reason: str, wanted: int, room: int) -> FinishReason:
    if reason == "length":
        return FinishReason.MAX_TOKENS if wanted <= room else FinishReason.CONTEXT_FULL
    if reason == "abort":
        return FinishReason.CANCELLED
    return FinishReason.END_OF_TURN


def kv_bytes_per_token(config_path: Path, dtype_bytes: int = 2) -> int:
    """K and V for every layer and KV head, at the KV cache's dtype (bf16: 2 bytes): 23,040 for SmolLM2-135M."""
    if not config_path.is_file():
        return 0
    config = json.loads(config_path.read_text())
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or config["num_attention_heads"]
    return int(2 * config["num_hidden_layers"] * kv_heads * head_dim * dtype_bytes)


def _tokenizer_path(settings: EngineSettings) -> Path:
    if settings.tokenizer_path is not None:
        return settings.tokenizer_path
    if settings.model_path is None:
        raise ValueError(f"engine {settings.name!r}: a vLLM engine at a url needs tokenizer_path (tokenizer.json)")
    return settings.model_path / "tokenizer.json"
