"""Chat templates as data, cut into the pieces block-by-block rendering needs.

A real Jinja template renders a whole conversation at once; prefix caching needs each block's tokens
to depend only on what comes before it, so we keep the template's pieces and assemble them ourselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachepoint.errors import ValidationError


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    begin: str  # once, before the first message (e.g. a BOS text)
    message_start: str  # with {role}
    message_end: str
    block_separator: str  # between two blocks of one message

    def start(self, role: str) -> str:
        return self.message_start.format(role=role)


CHATML = ChatTemplate(
    name="chatml",
    begin="",
    message_start="<|im_start|>{role}\n",
    message_end="<|im_end|>\n",
    block_separator="\n\n",
)

LLAMA3 = ChatTemplate(
    name="llama3",
    begin="<|begin_of_text|>",
    message_start="<|start_header_id|>{role}<|end_header_id|>\n\n",
    message_end="<|eot_id|>",
    block_separator="\n\n",
)

TEMPLATES = {t.name: t for t in (CHATML, LLAMA3)}


def template_named(name: str) -> ChatTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValidationError(f"unknown chat template {name!r}; known: {sorted(TEMPLATES)}") from None
