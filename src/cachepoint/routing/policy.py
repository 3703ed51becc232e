"""Pure ranking of destination Regions. A registry, not an if-ladder; an unknown name lists the valid ones.

- `bedrock`: what Bedrock does, as far as a client can tell: a load-based choice with no knowledge of
  caches; among the least-loaded destinations the pick is random, so an idle profile spreads requests
  over its Regions and each Region change writes the prefix again.
- `cache-affinity` (default): SGLang's cache-aware rule across Regions. If load is imbalanced (max−min
  above an absolute threshold AND max above a relative multiple of min), take the least loaded; else the
  destination holding the longest cached prefix; with no cached prefix anywhere, the least loaded
  (on a tie: a Region that caches this model, then the source Region), so a prefix starts where it can
  be read again.
- `oracle`: the longest cached prefix whatever the load; a reference for benchmarks, not for production.
Down Regions are never candidates.

Within the chosen Region, `choose_replica` applies the cache-affinity rule to its live replicas whatever the
Region policy: the replica holding the longest live prefix, unless the load guard says it is overloaded, else
the least loaded (llm-d's and the SGLang router's rule).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachepoint.errors import ServiceUnavailableError


@dataclass(frozen=True)
class Candidate:
    name: str  # a Region's ID, or a replica's name within a Region
    load: int  # jobs queued or running
    cached_tokens: int  # longest live prefix of this request cached there (0 when caching is off there)
    is_source: bool = False
    caches: bool = True  # prompt caching is on there for this model


@dataclass(frozen=True)
class LoadGuard:
    balance_abs_threshold: int = 4
    balance_rel_threshold: float = 1.5


Policy = Callable[[Sequence[Candidate], LoadGuard, random.Random], Candidate]


def choose_bedrock(candidates: Sequence[Candidate], guard: LoadGuard, rng: random.Random) -> Candidate:
    least = min(c.load for c in candidates)
    return rng.choice([c for c in candidates if c.load == least])


def choose_cache_affinity(candidates: Sequence[Candidate], guard: LoadGuard, rng: random.Random) -> Candidate:
    if _imbalanced(candidates, guard):
        return _least_loaded(candidates)
    best = max(candidates, key=lambda c: c.cached_tokens)
    return best if best.cached_tokens > 0 else _least_loaded(candidates)


def choose_oracle(candidates: Sequence[Candidate], guard: LoadGuard, rng: random.Random) -> Candidate:
    best = max(candidates, key=lambda c: c.cached_tokens)
    return best if best.cached_tokens > 0 else _least_loaded(candidates)


POLICIES: dict[str, Policy] = {
    "bedrock": choose_bedrock,
    "cache-affinity": choose_cache_affinity,
    "oracle": choose_oracle,
}


def policy_named(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown routing policy {name!r}; known: {sorted(POLICIES)}") from None


def choose_replica(candidates: Sequence[Candidate], guard: LoadGuard, rng: random.Random) -> Candidate:
    if not candidates:
        raise ServiceUnavailableError("No engine replica of this Region is available. Try again later.")
    return choose_cache_affinity(candidates, guard, rng)


class RoundRobin:
    """The cache-blind baseline for replicas (what a plain load balancer does): each call the next one."""

    def __init__(self) -> None:
        self._turn = itertools.count()

    def __call__(self, candidates: Sequence[Candidate], guard: LoadGuard, rng: random.Random) -> Candidate:
        ordered = sorted(candidates, key=lambda c: c.name)
        return ordered[next(self._turn) % len(ordered)]


REPLICA_POLICIES: dict[str, Callable[[], Policy]] = {
    "cache-affinity": lambda: choose_replica,
    "round-robin": RoundRobin,
}


def replica_policy_named(name: str) -> Policy:
    try:
        return REPLICA_POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown replica policy {name!r}; known: {sorted(REPLICA_POLICIES)}") from None


def choose(policy: Policy, candidates: Sequence[Candidate], guard: LoadGuard, rng: random.Random) -> Candidate:
    if not candidates:
        raise ServiceUnavailableError("No destination Region of this inference profile is available. Try again later.")
    return policy(candidates, guard, rng)


def _imbalanced(candidates: Sequence[Candidate], guard: LoadGuard) -> bool:
    loads = [c.load for c in candidates]
    low, high = min(loads), max(loads)
    return high - low > guard.balance_abs_threshold and high > guard.balance_rel_threshold * low


def _least_loaded(candidates: Sequence[Candidate]) -> Candidate:
    # min() keeps the first of equals: Regions that cache first, then the source, then configuration order
    return min(sorted(candidates, key=lambda c: (not c.caches, not c.is_source)), key=lambda c: c.load)
