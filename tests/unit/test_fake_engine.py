"""The fake engine's tokenizer is linear: a 5 MB text once kept the event loop busy for minutes."""

from __future__ import annotations

import time

from cachepoint.engine.fake import FakeEngine


def test_tokenize_is_one_token_per_byte_with_special_markers() -> None:
    engine = FakeEngine()
    assert engine.tokenize("a<|im_start|>é", special=True) == [ord("a") + 3, 0, 0xC3 + 3, 0xA9 + 3]
    assert engine.tokenize("<|im_end|>", special=False) == [b + 3 for b in b"<|im_end|>"]


def test_tokenize_five_megabytes_is_fast() -> None:
    text = "word <|im_end|> " * 320_000  # 5 MB
    started = time.perf_counter()
    tokens = FakeEngine().tokenize(text, special=True)
    assert time.perf_counter() - started < 2.0
    assert len(tokens) == 320_000 * (len("word  ") + 1)
