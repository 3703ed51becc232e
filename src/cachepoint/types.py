"""Canonical values passed between layers. Both wire dialects translate into these and back."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

AccountId = NewType("AccountId", str)
RegionId = NewType("RegionId", str)
RequestId = NewType("RequestId", str)


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"  # a system turn inside the conversation (Converse's `system` role)


class Ttl(StrEnum):
    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"

    @property
    def seconds(self) -> int:
        return 300 if self is Ttl.FIVE_MINUTES else 3600


class BlockKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    DOCUMENT = "document"
    TOOL_USE = "tool_use"
    CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"
    TOOL_RESULT = "tool_result"
    REASONING = "reasoning"


class Section(StrEnum):
    """The three places a checkpoint may sit, in linearisation order."""

    TOOLS = "tools"
    SYSTEM = "system"
    MESSAGES = "messages"


class StopReason(StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"


@dataclass(frozen=True)
class Checkpoint:
    """A cache marker on the block it closes. `path` names that block in Anthropic indices
    (`system.1`, `messages.3.content.0`, `tools.2`) for error messages."""

    ttl: Ttl
    path: str
    wire_path: str | None = None  # where the client wrote it, when that differs (Converse arrays)
    implicit: bool = False  # placed by implicit caching, not by the client: its writes are not billed

    @property
    def label(self) -> str:
        """How reports name it: its TTL, or `implicit`."""
        return "implicit" if self.implicit else self.ttl.value


@dataclass(frozen=True)
class Block:
    """One unit of the linearised prompt. `text` is what the model sees for it."""

    kind: BlockKind
    text: str
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class Message:
    role: Role
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Prompt:
    """tools → system → messages; tools are blocks whose text is the tool's definition."""

    tools: tuple[Block, ...] = ()
    system: tuple[Block, ...] = ()
    messages: tuple[Message, ...] = ()
    # What keys the messages part besides its tokens (Anthropic's invalidation rules): (name, value) pairs for
    # tool_choice, thinking and whether images are present; all empty for most requests.
    message_salt: tuple[tuple[str, str], ...] = ()

    def checkpoints(self) -> list[tuple[Section, Checkpoint]]:
        found: list[tuple[Section, Checkpoint]] = []
        for section, blocks in self.sections():
            found += [(section, b.checkpoint) for b in blocks if b.checkpoint is not None]
        return found

    def sections(self) -> list[tuple[Section, tuple[Block, ...]]]:
        message_blocks = tuple(b for m in self.messages for b in m.blocks)
        return [(Section.TOOLS, self.tools), (Section.SYSTEM, self.system), (Section.MESSAGES, message_blocks)]


@dataclass(frozen=True)
class SamplingParams:
    """`max_tokens` None means the model's default, which the service fills in."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop_sequences: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class CallContext:
    """Who is calling and from where; the cache is scoped by both."""

    account_id: AccountId
    region: RegionId
    request_id: RequestId
    principal: str = "anonymous"  # a name for logs: an access key ID or a token's fingerprint, never a secret
