"""The tiered snapshot store (RAM over disk) and restart recovery, on the fake engine's snapshots, with a fake
clock and a temporary directory: demotion and promotion order, budgets, crash leftovers, TTLs across restarts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cachepoint.cache.disk import DiskTier
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import CachePlan, CacheScope, SnapshotUnavailable
from cachepoint.cache.store import TieredStore
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import decode_snapshot
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.render import RenderedPrompt
from cachepoint.types import Ttl
from tests.cachekit import captured, rendered, scope

RULES = Catalog.packaged().get("anthropic.claude-sonnet-4-5-20250929-v1:0").caching  # min 1024 tokens
M5, H1 = Ttl.FIVE_MINUTES, Ttl.ONE_HOUR
SNAPSHOT = 4 * 1100  # the fake engine's bytes for a 1,100-token prefix


def doc(name: str, ttl: Ttl = M5) -> RenderedPrompt:
    return rendered([(name, 1100)], {0: ttl}, tail=5)


class Server:
    """One cache on a disk directory, as one server process would hold it."""

    def __init__(self, directory: Path, clock: FakeClock, ram_bytes: int, fingerprint: str = "") -> None:
        self.disk = DiskTier(directory, budget_bytes=10**9, max_queued_bytes=10**8)
        self.cache = PrefixCache(clock, 10**9, TieredStore(ram_bytes, self.disk))
        self.fingerprint = fingerprint
        self.recovery = self.cache.recover({fingerprint})

    def request(self, prompt: RenderedPrompt, account: str = "111122223333") -> CachePlan:
        """plan → fetch (a disk hit) → prefill → commit → release, as the service does."""
        where = scope(account) if not self.fingerprint else _scoped(account, self.fingerprint)
        plan = self.cache.plan(where, prompt, RULES)
        while plan.fetch_blob is not None:
            try:
                plan = self.cache.fetch(plan)
            except SnapshotUnavailable as error:
                self.cache.discard(plan, error)
                self.cache.release(plan)
                plan = self.cache.plan(where, prompt, RULES)
        if plan.restore is not None:
            assert decode_snapshot(plan.restore)[: plan.restore_tokens] == list(prompt.tokens[: plan.restore_tokens])
        self.cache.commit(plan, captured(prompt, plan))
        self.cache.release(plan)
        self.cache.index.check_integrity()
        return plan

    def settle(self) -> None:
        assert self.disk.flush()

    def stop(self) -> None:
        self.disk.close()


def _scoped(account: str, fingerprint: str) -> CacheScope:
    return replace(scope(account), fingerprint=fingerprint)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def servers(tmp_path: Path, clock: FakeClock) -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        server.stop()


def start(
    servers: list[Server], tmp_path: Path, clock: FakeClock, ram_bytes: int = 10**6, fingerprint: str = ""
) -> Server:
    server = Server(tmp_path / "kv", clock, ram_bytes, fingerprint)
    servers.append(server)
    return server


def restart(servers: list[Server], tmp_path: Path, clock: FakeClock, **kwargs: object) -> Server:
    """Stop the last server without ceremony (what reached the disk is all there is) and start another."""
    servers[-1].stop()
    servers.pop()
    return start(servers, tmp_path, clock, **kwargs)  # type: ignore[arg-type]


def outcome(plan: CachePlan) -> str:
    return ",".join(r.compact() for r in plan.reports)


def test_a_write_is_read_from_disk_after_a_restart(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    first = start(servers, tmp_path, clock)
    assert outcome(first.request(doc("a"))) == "written:1100:5m:new"
    assert outcome(first.request(doc("a"))) == "hit:1100:5m:ram"
    first.settle()
    clock.tick(60)
    second = restart(servers, tmp_path, clock)
    assert second.recovery is not None and len(second.recovery.entries) == 1 and not second.recovery.dropped
    plan = second.request(doc("a"))
    assert outcome(plan) == "hit:1100:5m:disk" and plan.read_tokens == 1100 and plan.restore is not None
    assert outcome(second.request(doc("a"))) == "hit:1100:5m:ram", "a disk read promotes the snapshot"
    assert second.cache.store.stats.promotions == 1


def test_ram_over_budget_demotes_the_least_recently_used_to_disk(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    server = start(servers, tmp_path, clock, ram_bytes=2 * SNAPSHOT)
    for name in ("a", "b"):
        server.request(doc(name))
        server.settle()
    server.request(doc("a"))  # a becomes the most recently used
    server.request(doc("c"))  # RAM holds two: b, the least recently used, goes to disk
    server.settle()
    tiers = server.cache.stats().tiers
    assert tiers["ram"]["entries"] == 2 and tiers["disk"]["entries"] == 1 and tiers["ram"]["demotions"] == 1
    assert outcome(server.request(doc("b"))) == "hit:1100:5m:disk"  # promoted: a, now the oldest, goes down
    assert outcome(server.request(doc("c"))) == "hit:1100:5m:ram"
    assert outcome(server.request(doc("a"))) == "hit:1100:5m:disk"
    assert server.cache.store.ram.num_bytes <= 2 * SNAPSHOT
    assert server.cache.index.num_entries == 3, "a demotion never removes an entry"


def test_a_snapshot_is_never_demoted_before_its_disk_write_lands(tmp_path: Path, clock: FakeClock) -> None:
    disk = DiskTier(tmp_path / "kv", budget_bytes=10**9, max_queued_bytes=10**8)
    cache = PrefixCache(clock, 10**9, TieredStore(SNAPSHOT, disk))  # writer not started yet: writes wait
    for name in ("a", "b"):
        plan = cache.plan(scope(), doc(name), RULES)
        cache.commit(plan, captured(doc(name), plan))
        cache.release(plan)
    assert cache.store.ram.num_bytes == 2 * SNAPSHOT, "RAM may overrun its budget while writes are queued"
    disk.start()
    assert disk.flush()
    cache.store.get(next(iter(cache.store.tiers())))  # the next store call settles
    assert cache.store.ram.num_bytes == SNAPSHOT and cache.store.stats.demotions == 1
    assert cache.store.stats.lost == 0
    disk.close()


def test_an_entry_that_expired_while_down_misses_as_expired(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    start(servers, tmp_path, clock).request(doc("a"))
    servers[-1].settle()
    clock.tick(301)
    server = restart(servers, tmp_path, clock)
    assert server.recovery is not None and server.recovery.dropped == {"expired": 1}
    assert outcome(server.request(doc("a"))) == "written:1100:5m:expired"
    assert not list((tmp_path / "kv" / "snapshots").glob("1.kv")), "the expired snapshot's file is deleted"


def test_the_ttl_runs_from_the_last_hit_across_a_restart(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    server = start(servers, tmp_path, clock)
    server.request(doc("a"))
    clock.tick(200)
    server.request(doc("a"))  # refreshed: live until 200 + 300
    server.settle()
    clock.tick(250)  # 450 s after the write, 250 after the hit
    server = restart(servers, tmp_path, clock)
    assert outcome(server.request(doc("a"))) == "hit:1100:5m:disk"
    server.settle()
    clock.tick(301)
    server = restart(servers, tmp_path, clock)
    assert outcome(server.request(doc("a"))) == "written:1100:5m:expired"


def test_one_hour_entries_keep_their_ttl(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    start(servers, tmp_path, clock).request(doc("a", H1))
    servers[-1].settle()
    clock.tick(1800)
    assert outcome(restart(servers, tmp_path, clock).request(doc("a", H1))) == "hit:1100:1h:disk"


def test_another_engine_fingerprint_drops_every_entry(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    start(servers, tmp_path, clock, fingerprint="model-v1").request(doc("a"))
    servers[-1].settle()
    server = restart(servers, tmp_path, clock, fingerprint="model-v2")
    assert server.recovery is not None and server.recovery.dropped == {"fingerprint": 1}
    assert outcome(server.request(doc("a"))) == "written:1100:5m:new"


def test_a_truncated_snapshot_is_dropped_at_start_up(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    start(servers, tmp_path, clock).request(doc("a"))
    servers[-1].settle()
    servers[-1].stop()
    servers.pop()
    (path,) = (tmp_path / "kv" / "snapshots").glob("*.kv")
    path.write_bytes(path.read_bytes()[:100])
    server = start(servers, tmp_path, clock)
    assert server.recovery is not None and server.recovery.dropped == {"unreadable": 1}
    assert outcome(server.request(doc("a"))) == "written:1100:5m:snapshot-unreadable"


def test_a_corrupt_snapshot_is_a_clean_miss_with_its_cause(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    start(servers, tmp_path, clock).request(doc("a"))
    servers[-1].settle()
    servers[-1].stop()
    servers.pop()
    (path,) = (tmp_path / "kv" / "snapshots").glob("*.kv")
    data = bytearray(path.read_bytes())
    data[-7] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(data))
    server = start(servers, tmp_path, clock)
    plan = server.request(doc("a"))
    assert outcome(plan) == "written:1100:5m:snapshot-unreadable" and plan.read_tokens == 0
    assert server.cache.store.stats.load_failures == 1
    assert outcome(server.request(doc("a"))) == "hit:1100:5m:ram"


def test_stored_tokens_that_differ_from_the_request_are_a_miss(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    """An equal key with other tokens (a hash collision, or a bug): the tokens are compared before a restore."""
    server = start(servers, tmp_path, clock)
    server.request(doc("a"))
    (blob,) = server.cache.store.tiers()
    held = server.cache.store.get(blob)
    assert held is not None
    held.tokens[17] += 1
    assert outcome(server.request(doc("a"))) == "written:1100:5m:token-mismatch"


def test_a_torn_write_leaves_no_entry(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    """Entries whose snapshot row never landed, leftover temporary files and unnamed files are cleaned up."""
    start(servers, tmp_path, clock).request(doc("a"))
    servers[-1].settle()
    servers[-1].stop()
    servers.pop()
    with sqlite3.connect(tmp_path / "kv" / "manifest.sqlite") as db:
        db.execute("DELETE FROM snapshots")
    (tmp_path / "kv" / "snapshots" / "9.kv.tmp").write_bytes(b"half")
    server = start(servers, tmp_path, clock)
    assert server.recovery is not None and server.recovery.dropped == {"torn": 1}
    assert list((tmp_path / "kv" / "snapshots").iterdir()) == []
    assert outcome(server.request(doc("a"))) == "written:1100:5m:new"


def test_accounts_stay_apart_after_a_restart(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    start(servers, tmp_path, clock).request(doc("a"), account="111111111111")
    servers[-1].settle()
    server = restart(servers, tmp_path, clock)
    assert outcome(server.request(doc("a"), account="222222222222")) == "written:1100:5m:new"
    assert outcome(server.request(doc("a"), account="111111111111")) == "hit:1100:5m:disk"


def test_a_disk_read_slower_than_recomputing_is_skipped_but_still_billed_as_a_read(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    start(servers, tmp_path, clock).request(doc("a"))
    servers[-1].settle()
    server = restart(servers, tmp_path, clock)
    server.cache.costs.observe_prefill("", 1000, 0.01)  # 100k tokens/s: recomputing 1,100 takes 11 ms
    server.cache.costs.disk_read.observe(1000, 1.0)  # 1 kB/s: reading 4.4 kB takes 4.4 s
    plan = server.request(doc("a"))
    assert outcome(plan) == "hit:1100:5m:recomputed"
    assert plan.read_tokens == 1100 and plan.restore is None and plan.restore_tokens == 0


def test_one_process_per_disk_directory(servers: list[Server], tmp_path: Path, clock: FakeClock) -> None:
    start(servers, tmp_path, clock)
    with pytest.raises(ValueError, match="in use by another cachepoint process"):
        DiskTier(tmp_path / "kv", budget_bytes=10**9, max_queued_bytes=10**8)


def test_recovery_restores_the_lru_order_and_the_budget(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    server = start(servers, tmp_path, clock)
    for name in ("a", "b", "c"):
        server.request(doc(name))
        clock.tick(1)
    server.request(doc("a"))
    server.settle()
    server = restart(servers, tmp_path, clock)
    keys = [e.blob_id for e in server.cache.index.entries()]
    assert len(keys) == 3
    server.cache.resize(2 * SNAPSHOT)  # the least recently used (b) goes first
    assert outcome(server.request(doc("b"))).startswith("written:1100:5m:evicted")
    server.settle()
    assert server.disk.num_files == 2


class FailingManifest:
    """The manifest as SQLite would behave with a full disk: inserting a snapshot's row fails."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: object) -> object:
        if sql.startswith("INSERT OR REPLACE INTO snapshots"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_a_failed_manifest_batch_loses_no_ram_bytes_and_releases_waiters(
    servers: list[Server], tmp_path: Path, clock: FakeClock
) -> None:
    server = start(servers, tmp_path, clock, ram_bytes=SNAPSHOT)
    server.disk._db = FailingManifest(server.disk._db)  # type: ignore[assignment]
    server.request(doc("a"))
    assert server.disk.flush(timeout_s=10), "a waiter on a failed batch is released"
    server.request(doc("b"))  # RAM holds one: a cannot be demoted (it never reached the disk), so it is lost
    server.settle()
    assert list((tmp_path / "kv" / "snapshots").glob("*.kv")) == [], "no file without its row"
    assert server.cache.store.stats.demotions == 0
    plan = server.request(doc("a"))
    assert outcome(plan).startswith("written:1100:5m:"), "never a read of bytes that are gone"
