"""Prefix keys: a SHA-256 chain over each block's tokens, seeded by (account, Region, base model).

Seeding the first link isolates the whole chain (vLLM's cache_salt idea): equal tokens in another
account, Region, model or engine never produce an equal key. The profile ID is not part of the seed, so a
base-model ID and a `us.` profile landing in the same Region share entries.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence
from typing import NewType

BlockHash = NewType("BlockHash", bytes)

_VERSION = b"cachepoint-prefix-v1"


def scope_seed(account_id: str, region: str, model_id: str, fingerprint: str = "") -> BlockHash:
    """`fingerprint` is the engine's (model file, template, KV format): another engine's KV never matches."""
    parts = (_VERSION, account_id.encode(), region.encode(), model_id.encode(), fingerprint.encode())
    material = b"\x00".join(parts)
    return BlockHash(hashlib.sha256(material).digest())


def chain_keys(
    seed: BlockHash, tokens: Sequence[int], ends: Sequence[int], salt_at: int | None = None, salt: bytes = b""
) -> tuple[BlockHash, ...]:
    """Key of each prefix tokens[:end], for increasing `ends`; each link hashes the previous key. `salt` enters
    the link of block `salt_at` (the first message block): what changes it changes every key from there on."""
    keys: list[BlockHash] = []
    previous, start = seed, 0
    for index, end in enumerate(ends):
        link = hashlib.sha256(previous)
        if index == salt_at:
            link.update(salt)
        link.update(array("I", tokens[start:end]).tobytes())
        previous, start = BlockHash(link.digest()), end
        keys.append(previous)
    return tuple(keys)
