"""A host of its own for a test's process: a network namespace joined to this one by a veth pair, so the
process is reached at its own address, as on another machine. Needs CAP_NET_ADMIN (root here); where that is
missing the process runs on loopback instead, and every assertion still runs."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Host:
    address: str
    wrapper: tuple[str, ...]  # the command prefix that runs a process on this host


LOOPBACK = Host("127.0.0.1", ())


@contextmanager
def own_host(index: int) -> Iterator[Host]:
    ns = f"cp{os.getpid() % 100000}h{index}"
    outside, inside = f"{ns}a", f"{ns}b"
    subnet = f"10.231.{(os.getpid() * 8 + index) % 250}"
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
        ["ip", "link", "set", inside, "netns", ns],
        ["ip", "addr", "add", f"{subnet}.1/30", "dev", outside],
        ["ip", "link", "set", outside, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{subnet}.2/30", "dev", inside],
        ["ip", "netns", "exec", ns, "ip", "link", "set", inside, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("no network namespace (%s): this process runs on loopback", error)
        _remove(ns, outside)
        yield LOOPBACK
        return
    try:
        yield Host(f"{subnet}.2", ("ip", "netns", "exec", ns))
    finally:
        _remove(ns, outside)


def _remove(ns: str, outside: str) -> None:
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)  # takes its veth end along
    subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=10)
