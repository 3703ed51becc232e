"""Render a Prompt to tokens block by block and record each block's cumulative end offset T(k).

Layout (one system message holds tools then system blocks; each block's tokens are its opener,
tokenised with special tokens allowed, then its text, tokenised with them disallowed, so user text can
never forge a role marker):

    [begin + start(system)] tool₁ [sep] tool₂ [sep] sys₁ ... [end + start(user)] b₁ [sep] b₂ ... tail

The opener that closes the previous message belongs to the *next* block, so a prefix never depends on
whether more blocks follow it in the same message. The tail (close + assistant opener) is never cached.
When the last message is the assistant's, it is continued (Anthropic's prefill): no tail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from cachepoint.prompt.template import ChatTemplate
from cachepoint.types import Block, Checkpoint, Prompt, Role, Section

TOOLS_HEADER = "You can use these tools. Each is described by a JSON object:\n"


class Tokenizer(Protocol):
    def tokenize(self, text: str, *, special: bool) -> list[int]: ...


@dataclass(frozen=True)
class Boundary:
    """The position just after one block: `block_index` counts blocks over all sections from 0."""

    block_index: int
    end_tokens: int
    section: Section
    checkpoint: Checkpoint | None


@dataclass(frozen=True)
class RenderedPrompt:
    tokens: tuple[int, ...]
    boundaries: tuple[Boundary, ...]
    message_salt: tuple[tuple[str, str], ...] = ()  # see Prompt.message_salt

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class _Piece:
    opener: str
    block: Block
    section: Section


def render(prompt: Prompt, template: ChatTemplate, tokenizer: Tokenizer) -> RenderedPrompt:
    tokens: list[int] = []
    boundaries: list[Boundary] = []
    for index, piece in enumerate(_pieces(prompt, template)):
        tokens += tokenizer.tokenize(piece.opener, special=True)
        tokens += tokenizer.tokenize(piece.block.text, special=False)
        boundaries.append(Boundary(index, len(tokens), piece.section, piece.block.checkpoint))
    tokens += tokenizer.tokenize(_tail(prompt, template), special=True)
    return RenderedPrompt(tuple(tokens), tuple(boundaries), prompt.message_salt)


def _pieces(prompt: Prompt, template: ChatTemplate) -> Iterator[_Piece]:
    previous_role: str | None = None
    system = [(Section.TOOLS, b) for b in prompt.tools] + [(Section.SYSTEM, b) for b in prompt.system]
    turns = [("system", system)] if system else []
    turns += [(m.role.value, [(Section.MESSAGES, b) for b in m.blocks]) for m in prompt.messages]
    for role, blocks in turns:
        for position, (section, block) in enumerate(blocks):
            opener = template.block_separator if position else _message_opener(template, previous_role, role)
            if section is Section.TOOLS and position == 0:
                opener += TOOLS_HEADER
            yield _Piece(opener, block, section)
        previous_role = role


def _message_opener(template: ChatTemplate, previous_role: str | None, role: str) -> str:
    if previous_role is None:
        return template.begin + template.start(role)
    return template.message_end + template.start(role)


def _tail(prompt: Prompt, template: ChatTemplate) -> str:
    if prompt.messages and prompt.messages[-1].role is Role.ASSISTANT:
        return ""
    if not prompt.messages and not prompt.tools and not prompt.system:
        return template.begin + template.start("assistant")
    return template.message_end + template.start("assistant")
