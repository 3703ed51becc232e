"""Operator routes in process: /health, /metrics (CloudWatch-named series), /dashboard, /dashboard/data and
/cachepoint/cache, checked against the numbers of one cache write and one cache read (and one bad call)."""

from __future__ import annotations

import time
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.testclient import TestClient

from cachepoint.api.common import AppServices
from cachepoint.cache.disk import DiskTier
from cachepoint.cache.snapfile import HEADER
from cachepoint.cache.manager import PrefixCache
from cachepoint.engine.fake import BYTES_PER_TOKEN
from tests.api.wire import ACCESS_KEY, ASSISTANT_TAIL, SEPARATOR, USER_OPENER, Boto, masked

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_BASE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
DOCUMENT = "0123456789" * 110
QUESTION = "Q?"
MAX_TOKENS = 8
WRITTEN = USER_OPENER + len(DOCUMENT)  # 1,106
PROMPT = WRITTEN + SEPARATOR + len(QUESTION) + ASSISTANT_TAIL  # 1,123
UNCACHED = PROMPT - WRITTEN  # 17
REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
]
# Claude Sonnet 4.5 at the us. (geographic) class, USD per 1M tokens (data/models.toml)
INPUT, OUTPUT, WRITE_5M, READ = Decimal("3.30"), Decimal("16.50"), Decimal("4.125"), Decimal("0.33")
MILLION = Decimal(1_000_000)
WRITE_COST = (UNCACHED * INPUT + WRITTEN * WRITE_5M + MAX_TOKENS * OUTPUT) / MILLION
READ_COST = (UNCACHED * INPUT + WRITTEN * READ + MAX_TOKENS * OUTPUT) / MILLION
UNCACHED_COST = (PROMPT * INPUT + MAX_TOKENS * OUTPUT) / MILLION  # the same request with no caching


def write_then_read(runtime: Boto) -> None:
    """One cache write and one cache read of the same 1,106-token prefix."""
    content = [{"text": DOCUMENT}, {"cachePoint": {"type": "default"}}, {"text": QUESTION}]
    for expected in (f"written:{WRITTEN}:5m:new", f"hit:{WRITTEN}:5m:ram"):
        response = runtime(
            "Converse",
            modelId=SONNET,
            messages=[{"role": "user", "content": content}],
            inferenceConfig={"maxTokens": MAX_TOKENS},
        )
        assert response.headers["x-cachepoint-cache"] == expected


def json_of(response: Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_health_needs_no_credentials(client: TestClient) -> None:
    assert json_of(client.get("/health")) == {"status": "ok"}


# -- /metrics ---------------------------------------------------------------------------------------------------------


def test_metrics_count_the_calls_with_cloudwatch_names(
    client: TestClient, runtime: Boto, fake_services: AppServices
) -> None:
    write_then_read(runtime)
    bad = runtime("Converse", modelId="acme.nope-v1:0", messages=[{"role": "user", "content": [{"text": QUESTION}]}])
    assert bad.status_code == 400

    disk_of(fake_services)  # the write has landed
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    account = fake_services.settings.account_for(ACCESS_KEY)
    labels = f'ModelId="{SONNET}",account="{account}",inference_region="us-east-1",region="us-east-1"'
    invalid = f'ModelId="invalid",account="{account}",inference_region="us-east-1",region="us-east-1"'
    expected = {
        f"Invocations_total{{{labels}}}": 2,
        f"InputTokenCount_total{{{labels}}}": 2 * UNCACHED,
        f"OutputTokenCount_total{{{labels}}}": 2 * MAX_TOKENS,
        f"CacheReadInputTokenCount_total{{{labels}}}": WRITTEN,
        f"CacheWriteInputTokenCount_total{{{labels}}}": WRITTEN,
        f'cachepoint_cache_writes_tokens_total{{{labels},ttl="5m"}}': WRITTEN,
        f'cachepoint_cache_writes_tokens_total{{{labels},ttl="1h"}}': 0,
        f"cachepoint_prefix_cache_queries_tokens_total{{{labels}}}": 2 * WRITTEN,
        f"cachepoint_prefix_cache_hits_tokens_total{{{labels}}}": WRITTEN,
        f"cachepoint_estimated_cost_usd_total{{{labels}}}": 0.0 + float(WRITE_COST) + float(READ_COST),  # float sums
        f"cachepoint_estimated_uncached_cost_usd_total{{{labels}}}": 0.0 + 2 * float(UNCACHED_COST),
        f"InvocationLatency_count{{{labels}}}": 2,
        f"Invocations_total{{{invalid}}}": 1,
        f"InvocationClientErrors_total{{{invalid}}}": 1,
        'cachepoint_cache_entries{region="us-east-1"}': 1,
        'cachepoint_cache_bytes{region="us-east-1"}': WRITTEN * BYTES_PER_TOKEN,
        "cachepoint_cache_budget_bytes": disk_of(fake_services).budget_bytes,
        'cachepoint_cache_tier_entries{tier="ram"}': 1,
        'cachepoint_cache_tier_entries{tier="disk"}': 0,
        'cachepoint_cache_tier_budget_bytes{tier="ram"}': fake_services.settings.cache_max_bytes,
        'cachepoint_cache_tier_writes_total{tier="disk"}': 1,
        'cachepoint_cache_tier_promotions_total{tier="ram"}': 0,
    }
    samples = exposition_samples(response.text)
    assert {series: samples.get(series) for series in expected} == expected
    assert not [name for name in samples if name.startswith(("InvocationServerErrors", "InvocationThrottles"))]


def exposition_samples(text: str) -> dict[str, float]:
    """`name{labels} value` lines of the Prometheus text format, comments left out."""
    pairs = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {series: float(value) for series, value in pairs}


# -- /dashboard ----------------------------------------------------------------------------------------------------------


def test_dashboard_is_the_packaged_self_contained_page(client: TestClient) -> None:
    response = client.get("/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = resources.files("cachepoint.data").joinpath("dashboard.html").read_text()
    assert response.text == page
    assert "<title>cachepoint dashboard</title>" in page
    assert 'fetch("dashboard/data"' in page
    assert 'src="http' not in page and "<link" not in page  # no CDN


def disk_of(services: AppServices) -> DiskTier:
    """The disk tier (on by default), its queued writes done, so its figures are settled."""
    cache = services.inference.cache
    assert isinstance(cache, PrefixCache) and cache.disk is not None
    assert cache.disk.flush()
    return cache.disk


def empty_stats(services: AppServices) -> dict[str, Any]:
    disk = disk_of(services)
    return {
        "num_entries": 0,
        "num_snapshots": 0,
        "num_bytes": 0,
        "budget_bytes": disk.budget_bytes,  # what exists is bounded by the disk tier; RAM holds the hot part
        "removals": {},
        "quota_evictions_by_account": {},
        "entries_by_region": {},
        "bytes_by_region": {},
        "tiers": {
            "ram": {"entries": 0, "bytes": 0, "budget_bytes": services.settings.cache_max_bytes, "promotions": 0,
                    "demotions": 0, "lost": 0},
            "disk": {"entries": 0, "files": 0, "bytes": 0, "budget_bytes": disk.budget_bytes, "writes": 0,
                     "write_failures": 0, "writes_skipped": 0, "load_failures": 0},
        },
    }  # fmt: skip


def one_entry_stats(services: AppServices) -> dict[str, Any]:
    size = WRITTEN * BYTES_PER_TOKEN
    stats = empty_stats(services)
    stats["tiers"]["ram"] |= {"entries": 1, "bytes": size}
    file_bytes = HEADER.size + 4 * WRITTEN + size  # the header, the token IDs, the snapshot
    stats["tiers"]["disk"] |= {"files": 1, "bytes": file_bytes, "writes": 1}
    return stats | {
        "num_entries": 1,
        "num_snapshots": 1,
        "num_bytes": size,
        "entries_by_region": {"us-east-1": 1},
        "bytes_by_region": {"us-east-1": size},
    }


def test_dashboard_data_before_any_call(client: TestClient, fake_services: AppServices) -> None:
    empty_rows = ["hit_rate", "read", "write", "uncached", "cost", "savings", "ttft_cached", "ttft_cold"]

    body = json_of(client.get("/dashboard/data"))
    masked(body["explorer"], "now", r"\d+\.\d+")
    assert body == {
        "series": {"minutes": [], "total": {row: [] for row in empty_rows}, "regions": {}, "replicas": {},
                   "causes": {}, "idle_gaps": gaps(), "prefixes": {"saved": [], "lost": []}},
        "cache": empty_stats(fake_services),
        "cluster": one_process_cluster(),
        "explorer": {"now": "<now>", "entries": []},
    }


def gaps(under_5_min: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
    """The idle-gap rows: (returns, reads) within 5 minutes; none later."""
    returns, reads = under_5_min
    return [{"gap": "under 5 min", "returns": returns, "reads": reads, "hit_rate": reads / returns if returns else None},
            {"gap": "5-60 min", "returns": 0, "reads": 0, "hit_rate": None},
            {"gap": "over 60 min", "returns": 0, "reads": 0, "hit_rate": None}]  # fmt: skip


def one_process_cluster() -> dict[str, Any]:
    """Every Region served by this process's engine, no shared directory."""
    embedded = {"name": "embedded", "up": True, "load": 0, "cached_bytes": None, "snapshots": None, "checked_at": None,
                "down_reason": None, "holds_bytes_in": "this process"}  # fmt: skip
    regions = {region: {"default": [embedded]} for region in REGIONS}
    return {"gateway": "127.0.0.1:8788", "regions": regions, "directory": None}


def within_one_minute() -> int:
    """The current minute (epoch seconds), waiting out its last two seconds so a few calls share it."""
    while time.time() % 60 > 58:
        time.sleep(0.1)
    return int(time.time() // 60) * 60


def test_dashboard_data_after_a_write_and_a_read(client: TestClient, runtime: Boto, fake_services: AppServices) -> None:
    minute = within_one_minute()
    write_then_read(runtime)

    body = json_of(client.get("/dashboard/data"))
    now = masked(body["explorer"], "now", r"\d+\.\d+")
    [entry] = body["explorer"]["entries"]
    prefix = masked(entry, "prefix", "[0-9a-f]{12}")
    last_used = masked(entry, "last_used_s", r"\d+\.\d+")
    assert now - 5 < last_used <= now and masked(entry, "expires_at_s", r"\d+\.\d+") == last_used + 300
    account = fake_services.settings.account_for(ACCESS_KEY)
    assert entry == {"prefix": "<prefix>", "region": "us-east-1", "holder": "", "account": account, "model": SONNET_BASE,
                     "num_tokens": WRITTEN, "ttl": "5m", "expires_at_s": "<expires_at_s>", "last_used_s": "<last_used_s>",
                     "hits": 1, "num_bytes": WRITTEN * BYTES_PER_TOKEN, "tier": "ram"}  # fmt: skip
    for series in [body["series"]["total"], body["series"]["regions"]["us-east-1"], body["series"]["replicas"]["embedded"]]:
        for key in ("ttft_cached", "ttft_cold"):  # one call each: its time to first token, in ms
            [value] = series[key]
            assert isinstance(value, float) and value >= 0 and value.is_integer()
            series[key] = ["<ms>"]
    row = {
        "hit_rate": [0.5],  # read / (read + write)
        "read": [WRITTEN],
        "write": [WRITTEN],
        "uncached": [2 * UNCACHED],
        "cost": [float(WRITE_COST + READ_COST)],
        "savings": [float(2 * UNCACHED_COST - WRITE_COST - READ_COST)],
        "ttft_cached": ["<ms>"],
        "ttft_cold": ["<ms>"],
    }
    saved = {"prefix": prefix, "region": "us-east-1", "model": SONNET, "calls": 2,
             "saved": pytest.approx(float(2 * UNCACHED_COST - WRITE_COST - READ_COST))}  # fmt: skip
    assert body == {
        "series": {"minutes": [minute], "total": row, "regions": {"us-east-1": row}, "replicas": {"embedded": row},
                   "causes": {"new": [1]}, "idle_gaps": gaps(under_5_min=(1, 1)),
                   "prefixes": {"saved": [saved | {"lost": 0.0}], "lost": []}},
        "cache": one_entry_stats(fake_services),
        "cluster": one_process_cluster(),
        "explorer": {"now": "<now>", "entries": [entry]},
    }


def test_cluster_of_one_process(client: TestClient) -> None:
    assert json_of(client.get("/cachepoint/cluster")) == one_process_cluster()


# -- /cachepoint/cache -----------------------------------------------------------------------------------------------------


BACKENDS = {"default": {"kind": "fake", "in_process": True}}


def idle_engines() -> dict[str, Any]:
    return {
        f"default@{region}": {"kv_bytes_per_token": BYTES_PER_TOKEN, "queued_jobs": 0, "last_prefill": None}
        for region in REGIONS
    }


def test_cache_stats_before_any_call(client: TestClient, fake_services: AppServices) -> None:
    assert json_of(client.get("/cachepoint/cache")) == {
        "cache": empty_stats(fake_services),
        "engines": idle_engines(),
        "backends": BACKENDS,
    }


def test_cache_stats_after_a_write_and_a_read(client: TestClient, runtime: Boto, fake_services: AppServices) -> None:
    write_then_read(runtime)

    body = json_of(client.get("/cachepoint/cache"))

    last_prefill = {"num_evaluated_tokens": UNCACHED, "prefill_s": 0.0, "restore_s": 0.0, "snapshot_s": 0.0}
    engines = idle_engines()
    engines["default@us-east-1"]["last_prefill"] = last_prefill  # the read computed only the 17-token tail
    assert body == {
        "cache": one_entry_stats(fake_services),
        "engines": engines,
        "backends": BACKENDS,
    }


@pytest.mark.parametrize("path", ["/metrics", "/dashboard/data", "/cachepoint/cache", "/cachepoint/cluster"])
def test_operator_routes_are_open_in_dev_mode(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
