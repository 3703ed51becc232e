"""A prompt's structural fingerprint: what Anthropic's cache diagnosis compares between two turns (model, tools,
system, each message, and the parameters that salt the messages part). Markers are left out: moving a
`cache_control` changes what is cached, not the prompt."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cachepoint.types import Block, Message, Prompt

DIGEST_BYTES = 12  # per part: collisions between a client's own consecutive turns are not a concern at 96 bits


@dataclass(frozen=True)
class PromptFingerprint:
    model: str  # the base model ID
    tools: bytes
    system: bytes
    messages: bytes  # one digest per message, in order, end to end (12 bytes a message)
    salt: tuple[tuple[str, str], ...]  # tool_choice, thinking, images (see prompt/salt.py)
    region: str  # where it ran: another Region has another cache
    cached_tokens: int  # the deepest prefix it read or wrote: what the next turn could read

    def extends(self, earlier: PromptFingerprint) -> bool:
        """Whether this prompt is the earlier one with messages appended (nothing altered, reordered or removed)."""
        return self.messages.startswith(earlier.messages)

    @property
    def num_bytes(self) -> int:
        """Roughly what remembering it costs (the memory that keeps fingerprints is bounded by this)."""
        return len(self.messages) + len(self.model) + len(self.region) + 3 * DIGEST_BYTES + 256


def fingerprint(model: str, prompt: Prompt, region: str, cached_tokens: int) -> PromptFingerprint:
    return PromptFingerprint(
        model=model,
        tools=_digest(_blocks(prompt.tools)),
        system=_digest(_blocks(prompt.system)),
        messages=b"".join(_digest(_message(m)) for m in prompt.messages),
        salt=prompt.message_salt,
        region=region,
        cached_tokens=cached_tokens,
    )


def _blocks(blocks: tuple[Block, ...]) -> bytes:
    # length-prefixed, so no two block lists encode alike
    return b"".join(f"{b.kind.value}:{len(b.text)}:".encode() + b.text.encode() for b in blocks)


def _message(message: Message) -> bytes:
    return message.role.value.encode() + b"|" + _blocks(message.blocks)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()
