"""An engine's fingerprint: what a KV snapshot depends on, so one is never restored into another engine.

It covers the model file's content, the chat template, the engine library's version and KV state format,
and the context size and KV types. A snapshot written under one fingerprint is dropped at start-up under
another (the disk tier), and the fingerprint seeds every prefix key, so it can never be read either.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import astuple
from pathlib import Path

from cachepoint.prompt.template import ChatTemplate
from cachepoint.settings import EngineSettings

KV_FORMAT = "llama-state-seq/1"  # one sequence's state, one KV stream (both llama.cpp engines write it)
KV_TYPES = "k=f16,v=f16"  # llama.cpp's defaults, which cachepoint does not change
_FILES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) → content digest


def engine_fingerprint(settings: EngineSettings, template: ChatTemplate, model_file: Path | None) -> str:
    parts = [settings.kind, "template=" + _digest(repr(astuple(template)).encode())]
    if settings.kind == "llamacpp" and model_file is not None:
        parts += [
            "model=" + file_digest(model_file),
            "llama-cpp-python=" + _version("llama_cpp_python"),
            KV_FORMAT,
            KV_TYPES,
            f"context={settings.context_tokens}",
            f"flash_attention={settings.flash_attention}",
        ]
    elif settings.kind == "vllm":  # vLLM keeps the KV: what matters is which model and server it is
        parts += [f"served={settings.served_model}", f"url={settings.url}", f"model={settings.model_path}",
                  f"tokenizer={settings.tokenizer_path}"]  # fmt: skip
    else:
        parts.append(f"context={settings.context_tokens}")
    return _digest("\n".join(parts).encode())[:32]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content (a re-encoded model has another), once per process per file version."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILES:
        with path.open("rb") as f:
            _FILES[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _FILES[key]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
