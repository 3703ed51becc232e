"""The cache doctor's analysis (pure): invocation-log records → findings, one per request, with causes.

Each request is reduced to its cacheable prefix: the text of every block up to its last checkpoint
(from the logged body, through the same translators the server uses), hashed with the base model.
Requests sharing that key form one prefix's history, in time order, and each outcome is explained:

    hit                  read > 0
    implicit-hit         read > 0 without any checkpoint (implicit caching); no-checkpoint: neither
    first-write          the prefix was never seen before
    region-switch        written again in a Region other than the one(s) that hold it
    ttl-expired          the same Region, but the gap since the last use exceeded the TTL
    region-not-caching   a checkpoint above the minimum, and neither read nor write
    below-minimum        the prefix is shorter than the model's minimum
    prefix-changed       a first write whose prefix is a small edit of an earlier one (a timestamp, an id)
    too-many-checkpoints / misplaced-checkpoint   rejected requests, from their error
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.anthropic.schema import InvokeBody
from cachepoint.api.bedrock import translate as converse
from cachepoint.api.bedrock.schema import ConverseRequest
from cachepoint.doctor.records import LogRecord, as_records
from cachepoint.errors import CachepointError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import parse_model_identifier
from cachepoint.types import Prompt, Ttl

MAX_CHECKPOINTS = 4
EDIT_SIMILARITY = 0.9  # shared head + tail of two prefixes, as a share of the longer one
EXCERPT = 40


@dataclass(frozen=True, slots=True)
class Request:
    index: int
    time_s: float
    request_id: str
    model_id: str
    base_model: str
    region: str
    inference_region: str
    read: int
    write: int
    uncached: int
    output: int
    prefix_text: str | None  # None: no checkpoint, or no body logged
    ttl_s: int
    error: str | None = None
    error_message: str | None = None
    num_checkpoints: int = 0


@dataclass(frozen=True, slots=True)
class Finding:
    request: Request
    cause: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def to_request(index: int, record: LogRecord) -> Request:
    prefix, ttl, problem, marks = _prefix(record.body)
    return Request(
        index=index,
        time_s=record.time_s,
        request_id=record.request_id if record.request_id is not None else str(index),
        model_id=record.model_id,
        base_model=_base(record.model_id),
        region=record.region,
        inference_region=record.inference_region,
        read=record.cache_read_tokens,
        write=record.cache_write_tokens,
        uncached=record.input_tokens,
        output=record.output_tokens,
        prefix_text=prefix,
        ttl_s=ttl,
        error=record.error_code,
        error_message=problem,
        num_checkpoints=marks,
    )


def analyse(records: Iterable[LogRecord | Mapping[str, Any]], catalog: Catalog) -> list[Finding]:
    """One finding per record, in the order given (the reader's is time order). Raw mappings are validated
    first (`Rejected` if one is invalid); records from `load_records` are already typed."""
    requests = [to_request(i, r) for i, r in enumerate(as_records(records))]
    history: dict[str, list[Request]] = {}  # prefix key → earlier requests with that prefix
    findings = []
    for request in requests:
        findings.append(_explain(request, history, requests, catalog))
        if request.prefix_text is not None and request.error is None:
            history.setdefault(_key(request), []).append(request)
    return findings


def _explain(
    request: Request, history: dict[str, list[Request]], everything: list[Request], catalog: Catalog
) -> Finding:
    if request.error is not None:
        return _rejected(request)
    if request.prefix_text is None:  # a read without any marker is implicit caching's (AWS's best-effort kind)
        return Finding(request, "implicit-hit" if request.read > 0 else "no-checkpoint")
    if request.read > 0:
        return Finding(request, "hit")
    earlier = history.get(_key(request), [])
    if request.write == 0:
        return _nothing_cached(request, catalog)
    return _miss(request, earlier, everything)


def _rejected(request: Request) -> Finding:
    message = request.error_message or ""
    if request.num_checkpoints > MAX_CHECKPOINTS:
        return Finding(
            request, "too-many-checkpoints", f"{request.num_checkpoints} checkpoints; at most {MAX_CHECKPOINTS}"
        )
    if "nothing available to cache" in message or "after reasoning block" in message:
        return Finding(request, "misplaced-checkpoint", message)
    return Finding(request, "error", request.error or "")


def _nothing_cached(request: Request, catalog: Catalog) -> Finding:
    spec = catalog.get(request.base_model)
    minimum = spec.caching.min_tokens if spec and spec.caching else 0
    prompt_tokens = request.uncached
    if prompt_tokens < minimum:
        return Finding(request, "below-minimum", f"{prompt_tokens} prompt tokens < the model's minimum {minimum}")
    return Finding(request, "region-not-caching", request.inference_region, {"region": request.inference_region})


def _miss(request: Request, earlier: list[Request], everything: list[Request]) -> Finding:
    cached_in = [r for r in earlier if r.read + r.write > 0]
    if not cached_in:
        edit = _closest_edit(request, everything)
        return edit or Finding(request, "first-write")
    same_region = [r for r in cached_in if r.inference_region == request.inference_region]
    if not same_region:
        regions = sorted({r.inference_region for r in cached_in})
        detail = f"cached in {', '.join(regions)}, served in {request.inference_region}"
        return Finding(request, "region-switch", detail, {"from": regions, "to": request.inference_region})
    gap = request.time_s - same_region[-1].time_s
    if gap >= request.ttl_s:
        return Finding(
            request, "ttl-expired", f"{gap:.0f} s since the last use (TTL {request.ttl_s} s)", {"gap_s": gap}
        )
    return Finding(request, "concurrent-write", f"{gap:.0f} s after a use in the same Region (entry not yet visible)")


def _closest_edit(request: Request, everything: list[Request]) -> Finding | None:
    new = request.prefix_text or ""
    for other in reversed(everything[: request.index]):
        old = other.prefix_text
        if old is None or old == new or other.base_model != request.base_model:
            continue
        edit = edit_span(old, new)
        if edit is not None:
            position, before, after = edit
            detail = f"first difference at character {position}: {before!r} → {after!r}"
            return Finding(request, "prefix-changed", detail, {"position": position, "before": before, "after": after})
    return None


def edit_span(old: str, new: str) -> tuple[int, str, str] | None:
    """Where two prefixes differ, if they differ only in a small edit (shared head + tail ≥ 90%)."""
    head = _shared_head(old, new)
    tail = _shared_tail(old[head:], new[head:])
    if head + tail < EDIT_SIMILARITY * max(len(old), len(new)):
        return None
    start = max(0, head - EXCERPT // 2)
    return head, old[start : len(old) - tail + EXCERPT // 2], new[start : len(new) - tail + EXCERPT // 2]


def _shared_head(a: str, b: str) -> int:
    """Length of the common prefix, found by halving: slice comparisons run in C, a character loop does not
    (logged prompts run to hundreds of thousands of characters, compared against every earlier one)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _shared_tail(a: str, b: str) -> int:
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle :] == b[len(b) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low


def _prefix(body: Mapping[str, Any] | None) -> tuple[str | None, int, str | None, int]:
    """(text up to the last checkpoint, its TTL in seconds, the body's validation error, the checkpoint count)."""
    default = Ttl.FIVE_MINUTES.seconds
    if body is None:
        return None, default, None, 0
    try:
        prompt = _prompt(body)
    except CachepointError as error:
        return None, default, error.message, 0
    except ValueError:  # not a body we understand (another provider's schema)
        return None, default, None, 0
    return (*_text_to_last_checkpoint(prompt), len(prompt.checkpoints()))


def _prompt(body: Mapping[str, Any]) -> Prompt:
    if "anthropic_version" in body:
        return anthropic.to_prompt(InvokeBody.model_validate(body))
    return converse.to_prompt(ConverseRequest.model_validate(body))


def _text_to_last_checkpoint(prompt: Prompt) -> tuple[str | None, int, str | None]:
    blocks = [b for _, section in prompt.sections() for b in section]
    marked = [i for i, b in enumerate(blocks) if b.checkpoint is not None]
    if not marked:
        return None, Ttl.FIVE_MINUTES.seconds, None
    last = blocks[marked[-1]]
    ttl = last.checkpoint.ttl.seconds if last.checkpoint else Ttl.FIVE_MINUTES.seconds
    return "\u241e".join(b.text for b in blocks[: marked[-1] + 1]), ttl, None


def prefix_key(request: Request) -> str:
    """Requests with the same cacheable prefix (model and text up to the last checkpoint) share this key."""
    return _key(request)


def _key(request: Request) -> str:
    # surrogatepass: JSON may escape a lone surrogate ("\\ud800"), which strict UTF-8 cannot encode
    key = f"{request.base_model}\0{request.prefix_text}"
    return hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


def _base(model_id: str) -> str:
    try:
        return parse_model_identifier(model_id).model_id
    except CachepointError:
        return model_id
