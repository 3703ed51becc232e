"""What keys a prompt's messages part besides its tokens: `tool_choice`, the thinking parameters, and whether
images are present (Anthropic's documented invalidation rules; see cache/salts.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cachepoint.prompt.blocks import canonical_json
from cachepoint.types import BlockKind, Prompt


def with_message_salt(prompt: Prompt, tool_choice: Any = None, thinking: Any = None) -> Prompt:
    images = any(b.kind is BlockKind.IMAGE for _, blocks in prompt.sections() for b in blocks)
    salt = (
        ("tool_choice", canonical_json(tool_choice) if tool_choice else ""),
        ("thinking", canonical_json(thinking) if thinking else ""),
        ("images", "present" if images else ""),
    )
    return replace(prompt, message_salt=salt)
