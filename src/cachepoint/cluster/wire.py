"""The internal API between gateways and `cachepoint node` replicas: jobs and engine events as JSON lines.

    POST /internal/v1/generate   a job → one JSON object per line: prefilled, token…, finished (or error)
    GET  /internal/v1/health     load, snapshots held, engines and their fingerprints
Every call carries `Authorization: Bearer <cluster secret>`. Snapshot bytes never cross it: a snapshot
stays on the node that made it, and travels as a reference (`ref`).
Pure: values to and from JSON-ready dicts, checked, no I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachepoint.engine.protocol import EngineEvent, Finished, FinishReason, GenerateJob, Prefilled, Snapshot
from cachepoint.types import SamplingParams

GENERATE = "/internal/v1/generate"
HEALTH = "/internal/v1/health"
MIN_SECRET_CHARS = 16
MAX_JOB_TOKENS = 1 << 20


class WireError(ValueError):
    """A malformed job or event."""


@dataclass(frozen=True)
class NodeJob:
    engine: str
    job: GenerateJob
    restore_ref: str | None  # the node's snapshot to restore `job.restore_tokens` from


def authorized(header: str | None, secret: str) -> bool:
    expected = f"Bearer {secret}"
    return header is not None and hmac.compare_digest(header.encode(), expected.encode())


def check_secret(secret: str | None) -> str:
    if not secret or len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"[cluster] secret must be set, at least {MIN_SECRET_CHARS} characters")
    return secret


# -- jobs -------------------------------------------------------------------------------------------
def job_to_wire(engine: str, job: GenerateJob) -> dict[str, Any]:
    s = job.sampling
    restore = {"ref": job.restore.ref, "tokens": job.restore_tokens} if job.restore is not None else None
    return {
        "engine": engine,
        "tokens": list(job.tokens),
        "sampling": {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p,
                     "top_k": s.top_k, "stop_sequences": list(s.stop_sequences), "seed": s.seed},  # fmt: skip
        "restore": restore,
        "capture_at": list(job.capture_at),
        "salt": job.salt,
    }


def job_from_wire(body: object, restore: Snapshot | None = None) -> NodeJob:
    """Checks every field (the node trusts the secret, not the shape). `restore` is the node's own snapshot
    for the body's `restore.ref`, found by the caller (see `restore_ref`)."""
    if not isinstance(body, Mapping):
        raise WireError("a job is a JSON object")
    tokens = _ints(body.get("tokens"), "tokens", MAX_JOB_TOKENS)
    sampling = _sampling(body.get("sampling"))
    ref, restore_tokens = _restore(body.get("restore"))
    try:
        job = GenerateJob(
            tuple(tokens),
            sampling,
            restore if ref is not None else None,
            restore_tokens if restore is not None else 0,
            tuple(_ints(body.get("capture_at", []), "capture_at", 64)),
            salt=_text(body.get("salt", ""), "salt"),
        )
    except ValueError as error:
        raise WireError(str(error)) from None
    return NodeJob(_text(body.get("engine"), "engine"), job, ref)


def restore_ref(body: object) -> tuple[str | None, int]:
    """The snapshot a job asks for, and how many of its tokens, before the job is built."""
    return _restore(body.get("restore") if isinstance(body, Mapping) else None)


def _restore(value: object) -> tuple[str | None, int]:
    if value is None:
        return None, 0
    if not isinstance(value, Mapping):
        raise WireError("restore must be an object or null")
    tokens = value.get("tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise WireError("restore.tokens must be a positive integer")
    return _text(value.get("ref"), "restore.ref"), tokens


def _sampling(value: object) -> SamplingParams:
    if not isinstance(value, Mapping):
        raise WireError("sampling must be an object")
    max_tokens = value.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 0):
        raise WireError("sampling.max_tokens must be a non-negative integer")
    stops = value.get("stop_sequences", [])
    if not isinstance(stops, list) or len(stops) > 64 or not all(isinstance(s, str) for s in stops):
        raise WireError("sampling.stop_sequences must be a list of strings")
    return SamplingParams(
        max_tokens,
        _number(value.get("temperature", 1.0), "temperature"),
        _number(value.get("top_p", 1.0), "top_p"),
        int(_number(value.get("top_k", 0), "top_k")),
        tuple(stops),
        int(_number(value.get("seed", 0), "seed")),
    )


# -- events -----------------------------------------------------------------------------------------
def event_to_wire(event: EngineEvent, refs: tuple[str, ...] = ()) -> dict[str, Any]:
    """`refs`: the node's names for the prefill's snapshots, in order."""
    if isinstance(event, Prefilled):
        pairs = zip(refs, event.snapshots, strict=True)
        snapshots = [{"ref": ref, "tokens": s.num_tokens, "bytes": s.num_bytes} for ref, s in pairs]
        return {"prefilled": {"snapshots": snapshots, "evaluated": event.num_evaluated_tokens,
                              "prefill_s": event.prefill_s, "restore_s": event.restore_s,
                              "snapshot_s": event.snapshot_s, "engine_cached": event.engine_cached_tokens}}  # fmt: skip
    if isinstance(event, Finished):
        return {"finished": event.reason.value, "engine_cached": event.engine_cached_tokens}
    return {"t": event}


def event_from_wire(line: Mapping[str, Any], holder: str) -> EngineEvent:
    """An event from `holder`; its snapshots become markers naming it. Errors are the caller's to read."""
    try:
        if "t" in line:
            return int(line["t"])
        if "prefilled" in line:
            p = line["prefilled"]
            snapshots = tuple(
                Snapshot(b"", int(s["tokens"]), int(s["bytes"]), holder=holder, ref=str(s["ref"]))
                for s in p["snapshots"]
            )
            cached = p.get("engine_cached")
            return Prefilled(snapshots, int(p["evaluated"]), float(p["prefill_s"]), float(p["restore_s"]),
                             float(p["snapshot_s"]), None if cached is None else int(cached))  # fmt: skip
        if "finished" in line:
            cached = line.get("engine_cached")
            return Finished(FinishReason(line["finished"]), None if cached is None else int(cached))
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"malformed event from {holder}: {error}") from None
    raise WireError(f"unknown event from {holder}: {sorted(line)}")


def _ints(value: object, name: str, limit: int) -> list[int]:
    if not isinstance(value, list) or len(value) > limit:
        raise WireError(f"{name} must be a list of at most {limit} integers")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 31 for v in value):
        raise WireError(f"{name} must hold non-negative 32-bit integers")
    return value


def _number(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise WireError(f"sampling.{name} must be a number")
    return float(value)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise WireError(f"{name} must be a string of at most 256 characters")
    return value
