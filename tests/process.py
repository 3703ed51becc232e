"""Run `cachepoint serve` as its own process (as an operator would), for tests that need a separate event
loop from the test's clients, a process-wide limit (open files), or the process's own memory figures."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live import free_port

FAKE_ENGINE = '[engines.default]\nkind = "fake"\ncontext_tokens = 8192\n'


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    state_dir: Path
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


def open_file_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@contextmanager
def serving(tmp_path: Path, config: str = FAKE_ENGINE, preexec: Callable[[], None] | None = None,
            ) -> Iterator[ServerProcess]:  # fmt: skip
    server = start(tmp_path, config, preexec=preexec)
    try:
        yield server
    finally:
        stop(server)


def start(tmp_path: Path, config: str = FAKE_ENGINE, *, command: str = "serve", port: int | None = None,
          preexec: Callable[[], None] | None = None, host: str = "127.0.0.1", wrapper: Sequence[str] = ()
          ) -> ServerProcess:  # fmt: skip
    """`cachepoint serve` (a gateway) or `cachepoint node`, on `port` or a free one, ready when this returns.
    `wrapper` runs it through another command (`ip netns exec NS`: a host of its own), listening on `host`."""
    state = tmp_path / "state"
    path = tmp_path / "cachepoint.toml"
    path.write_text(f'[server]\nstate_dir = "{state}"\n' + config)
    port = port or free_port()
    log = tmp_path / "server.log"  # a file, not a pipe: a chatty server must never block on a full pipe
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "cachepoint", command, "--config", str(path), "--port", str(port),
             "--host", host],
            stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=preexec,
        )  # fmt: skip
    server = ServerProcess(process, f"http://{host}:{port}", state, log)
    try:
        _wait_ready(server)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: ServerProcess) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _wait_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}: {server.stderr()[-2000:]}")
        try:
            httpx.get(f"{server.url}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")
