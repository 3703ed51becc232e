import random

import pytest

from cachepoint.errors import ServiceUnavailableError, ValidationError
from cachepoint.routing.policy import (
    Candidate,
    LoadGuard,
    choose,
    choose_bedrock,
    choose_cache_affinity,
    choose_replica,
    policy_named,
    replica_policy_named,
)
from cachepoint.routing.regions import RegionMap
from cachepoint.types import RegionId

GUARD = LoadGuard(balance_abs_threshold=4, balance_rel_threshold=1.5)
RNG = random.Random(0)


def c(region: str, load: int = 0, cached: int = 0, source: bool = False) -> Candidate:
    return Candidate(RegionId(region), load, cached, source)


def test_affinity_prefers_the_longest_cached_prefix() -> None:
    picked = choose_cache_affinity([c("a", 1), c("b", 2, 3000), c("c", 0, 1000)], GUARD, RNG)
    assert picked.name == "b"


def test_affinity_falls_back_to_load_when_imbalanced() -> None:
    # max - min = 6 > 4 and 6 > 1.5 * 0: overloaded, so the least loaded wins despite the cache
    assert choose_cache_affinity([c("a", 6, 5000), c("b", 0)], GUARD, RNG).name == "b"
    # 6 vs 3: absolute gap 3 is within the threshold: keep the cache
    assert choose_cache_affinity([c("a", 6, 5000), c("b", 3)], GUARD, RNG).name == "a"


def test_affinity_without_any_cache_starts_in_the_source_region() -> None:
    assert choose_cache_affinity([c("a"), c("b", source=True), c("c")], GUARD, RNG).name == "b"
    no_cache_source = Candidate(RegionId("s"), 0, 0, is_source=True, caches=False)
    assert (
        choose_cache_affinity([no_cache_source, c("b")], GUARD, RNG).name == "b"
    )  # never start where it cannot cache
    assert choose_cache_affinity([c("a", 1), c("b", 2, source=True)], GUARD, RNG).name == "a"


def test_bedrock_policy_is_cache_blind_and_spreads_idle_load() -> None:
    rng = random.Random(1)
    picks = {choose_bedrock([c("a", 0, 9000), c("b"), c("c")], GUARD, rng).name for _ in range(50)}
    assert picks == {"a", "b", "c"}
    assert choose_bedrock([c("a", 3, 9000), c("b", 1)], GUARD, rng).name == "b"


def test_registry_and_empty_candidates() -> None:
    with pytest.raises(ValueError, match="known: \\['bedrock', 'cache-affinity', 'oracle'\\]"):
        policy_named("random")
    with pytest.raises(ServiceUnavailableError):
        choose(policy_named("cache-affinity"), [], GUARD, RNG)


def test_profile_destinations_follow_the_source_region() -> None:
    regions = RegionMap.packaged({"regions": {"us-west-1": {}}})
    assert [r.region_id for r in regions.destinations("us", "us-east-1")] == ["us-east-1", "us-east-2", "us-west-2"]
    assert "us-west-1" in [r.region_id for r in regions.destinations("us", "us-west-1")]  # + the source
    assert len(regions.destinations("global", "eu-west-1")) == len(regions.regions)
    with pytest.raises(ValidationError, match="The provided model identifier is invalid."):
        regions.destinations("eu", "us-east-1")


def test_region_flags() -> None:
    regions = RegionMap.packaged(
        {"regions": {"ap-northeast-2": {"prompt_caching_disabled": ["m1"]}, "x-down-1": {"down": True}}}
    )
    seoul = regions.region("ap-northeast-2")
    assert not seoul.caches("m1") and seoul.caches("m2")
    assert regions.region("x-down-1").down
    with pytest.raises(ValidationError, match="not configured"):
        regions.region("mars-north-1")


def test_a_replica_holding_the_prefix_is_chosen_unless_it_is_overloaded() -> None:
    holder, idle = Candidate("node://a", 2, 5000), Candidate("node://b", 0, 0)
    assert choose_replica([holder, idle], GUARD, RNG).name == "node://a"
    busy = Candidate("node://a", 7, 5000)  # 7 - 0 > 4 and 7 > 1.5 × 0
    assert choose_replica([busy, idle], GUARD, RNG).name == "node://b"
    assert choose_replica([Candidate("node://a", 3, 0), Candidate("node://b", 1, 0)], GUARD, RNG).name == "node://b"
    with pytest.raises(ServiceUnavailableError, match="No engine replica"):
        choose_replica([], GUARD, RNG)


def test_round_robin_ignores_the_cache_and_takes_turns() -> None:
    policy = replica_policy_named("round-robin")
    replicas = [Candidate("node://b", 0, 5000), Candidate("node://a", 0, 0)]
    assert [policy(replicas, GUARD, RNG).name for _ in range(4)] == ["node://a", "node://b"] * 2
    with pytest.raises(ValueError, match="known: \\['cache-affinity', 'round-robin'\\]"):
        replica_policy_named("sticky")


@pytest.mark.parametrize(
    "replicas",
    [[], "embedded", ["embedded", "embedded"], ["node://host"], ["http://h:1"], ["node://h:1/x"], ["node://a b:1"], [3]],
)
def test_a_regions_replicas_must_be_named_properly(replicas: object) -> None:
    with pytest.raises(ValueError, match="replicas"):
        RegionMap.packaged({"regions": {"us-east-1": {"replicas": replicas}}})


def test_a_regions_replicas_default_to_the_embedded_engine() -> None:
    regions = RegionMap.packaged({"regions": {"us-west-2": {"replicas": ["node://10.0.0.5:8790", "embedded"]}}})
    assert regions.region("us-east-1").replicas == ("embedded",)
    assert regions.region("us-west-2").replicas == ("node://10.0.0.5:8790", "embedded")
