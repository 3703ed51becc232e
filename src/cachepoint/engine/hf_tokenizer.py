"""A model's own Hugging Face tokenizer (`tokenizer.json`, through the `tokenizers` library).

Engines that take token IDs (vLLM) get prompts rendered with cachepoint's block-by-block rendering and
tokenized here, so checkpoint offsets are exact in the tokens the engine actually sees. Two tokenizer
instances: one that recognises special tokens (role markers in the template), one that treats them as
text (user content can never forge a role marker).

Pieces are byte-level BPE strings (GPT-2's byte-to-unicode alphabet); `token_bytes` maps them back to
bytes so streamed text is assembled exactly as the llama.cpp engine does it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer


def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest above 255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


_BYTES = _unicode_to_byte()


class HfTokenizer:
    def __init__(self, path: Path, context_tokens: int, kv_bytes_per_token: int = 0) -> None:
        self._with_specials = Tokenizer.from_file(str(path))
        self._plain = Tokenizer.from_file(str(path))
        self._plain.encode_special_tokens = True
        self._specials = {t.content for t in self._with_specials.get_added_tokens_decoder().values() if t.special}
        self._context_tokens = context_tokens
        self._kv_bytes_per_token = kv_bytes_per_token
        self._max_token_bytes = max(len(self.token_bytes(i)) for i in range(self._with_specials.get_vocab_size()))

    @property
    def context_tokens(self) -> int:
        return self._context_tokens

    @property
    def max_token_bytes(self) -> int:
        return self._max_token_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        return self._kv_bytes_per_token

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        tokenizer = self._with_specials if special else self._plain
        return list(tokenizer.encode(text, add_special_tokens=False).ids)

    @lru_cache(maxsize=65536)  # noqa: B019 - one tokenizer per engine; pieces never change
    def token_bytes(self, token_id: int) -> bytes:
        piece = self._with_specials.id_to_token(token_id)
        if piece is None or piece in self._specials:
            return b""
        if all(ch in _BYTES for ch in piece):
            return bytes(_BYTES[ch] for ch in piece)
        return piece.encode()  # an added, non-special token stored as plain text
