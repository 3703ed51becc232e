"""Implicit prompt caching (AWS: "Amazon Bedrock and the model automatically attempt to reuse eligible prompt
prefixes. No cache controls or breakpoints are required"): a prompt without markers gets one, implicit, at the end
of its last block in a field the model caches. Its read is billed as a read; its write is not billed (AWS bills
writes "depending on the model" and publishes no write price for implicit caching), so the first such request
reports no cache usage at all."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from cachepoint.prompt.render import RenderedPrompt
from cachepoint.types import Checkpoint, Section, Ttl

IMPLICIT = Checkpoint(Ttl.FIVE_MINUTES, "implicit", implicit=True)


def with_implicit_checkpoint(rendered: RenderedPrompt, fields: Collection[Section]) -> RenderedPrompt:
    boundaries = rendered.boundaries
    if any(b.checkpoint is not None for b in boundaries):
        return rendered  # explicit caching: the client's markers alone
    eligible = [i for i, b in enumerate(boundaries) if b.section in fields]
    if not eligible:
        return rendered
    last = eligible[-1]
    marked = boundaries[:last] + (replace(boundaries[last], checkpoint=IMPLICIT),) + boundaries[last + 1 :]
    return replace(rendered, boundaries=marked)
