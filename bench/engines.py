"""Engines side by side, in one run, through the real HTTP API, on the same prompts:

  embedded-before   cachepoint on llama.cpp as first shipped (Q4_1 weights, batch 512, flash attention off)
  embedded          cachepoint on llama.cpp as shipped now (weights auto, flash attention), 8 slots
  vllm              cachepoint on a managed vLLM process (`cachepoint serve --engine vllm`)
  llama_cpp.server  the peer: llama-cpp-python's own server with its RAM cache, over its OpenAI API
  (and vLLM called directly with the same token IDs, for cachepoint's gateway overhead)

cachepoint is driven with boto3 ConverseStream; TTFT is the client's time to the first text delta.
Servers run one at a time. Writes bench/results/engines.json and prints the README table. Per engine (JSON keys):

  prefill_N, prompt_N          cold prefill tok/s of a ~N-token prompt (prompt tokens / cold TTFT), its tokens
  cold_ttft_4k_ms, cached_ttft_4k_ms, cached_over_cold_4k
                               a 4k prefix written, then read with another question
  decode_one                   one stream's decode tok/s on a short prompt (128 tokens after the first)
  aggregate_output_C           C = 1 and 8 clients on the same workload: each makes 2 ConverseStream requests
  ttft_p50_C_ms, ttft_p95_C_ms   in turn on the shared cached 4k prefix with its own question, 48 output
  errors_C                       tokens; output tok/s over the wall time (TTFTs and restores included)

The scaling figure is aggregate_output_8 / aggregate_output_1: like for like, in the same server.

    .venv/bin/python bench/engines.py [--sizes 1024 4096 8192] [--engines embedded-before embedded vllm peer]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from importlib import resources
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from cachepoint.engine.factory import embedded_weights
from cachepoint.engine.hf_tokenizer import HfTokenizer

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
RESULTS = Path(__file__).parent / "results"
VLLM_MODEL = Path(".venv-vllm/models/smollm2-135m-instruct")
SENTENCE = "Entry {tag}-{i}: the harbour ledger for week {i} lists {n} crates of apples and pears. "
CHARS_PER_TOKEN = 2.6  # this text (with 6-hex-digit tags) under SmolLM2's tokenizer
REQUESTS = 2  # per client, in turn, in `concurrent`


def document(tag: str, num_tokens: int) -> str:
    tag = hashlib.sha256(tag.encode()).hexdigest()[:6]  # one length for every tag: the same sizes for every engine
    sentences = int(num_tokens * CHARS_PER_TOKEN / len(SENTENCE.format(tag=tag, i=100, n=700)))
    return "".join(SENTENCE.format(tag=tag, i=i, n=i * 7) for i in range(sentences))


# -- one engine behind cachepoint ------------------------------------------------------------------


class Cachepoint:
    def __init__(self, url: str) -> None:
        config = Config(read_timeout=900, retries={"total_max_attempts": 1}, max_pool_connections=16)
        self.client = boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1",
                                   aws_access_key_id="AKIDBENCH", aws_secret_access_key="x", config=config)  # fmt: skip

    def stream(self, prefix: str, question: str, max_tokens: int, cached: bool) -> tuple[float, float, int, int]:
        """(TTFT s, total s, prompt tokens, output tokens)."""
        content: list[dict[str, Any]] = [{"text": prefix}] + ([{"cachePoint": {"type": "default"}}] if cached else [])
        started = time.perf_counter()
        response = self.client.converse_stream(
            modelId=MODEL, messages=[{"role": "user", "content": [*content, {"text": question}]}],
            inferenceConfig={"maxTokens": max_tokens, "temperature": 0},
        )  # fmt: skip
        first, usage = None, {}
        for event in response["stream"]:
            if "contentBlockDelta" in event and first is None:
                first = time.perf_counter() - started
            if "metadata" in event:
                usage = event["metadata"]["usage"]
        total = time.perf_counter() - started
        prompt = usage["inputTokens"] + usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)
        return first or total, total, prompt, usage["outputTokens"]


class Peer:
    """llama-cpp-python's server, prompted with the same ChatML text cachepoint renders."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stream(self, prefix: str, question: str, max_tokens: int, cached: bool) -> tuple[float, float, int, int]:
        text = f"<|im_start|>user\n{prefix}\n\n{question}<|im_end|>\n<|im_start|>assistant\n"
        body = {"prompt": text, "max_tokens": max_tokens, "temperature": 0, "stream": True}
        started, first, output = time.perf_counter(), None, 0
        with httpx.stream("POST", f"{self.url}/v1/completions", json=body, timeout=900) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line[6:] != "[DONE]" and json.loads(line[6:])["choices"][0]["text"]:
                    first = first or time.perf_counter() - started
                    output += 1
        total = time.perf_counter() - started
        tokens = httpx.post(f"{self.url}/extras/tokenize", json={"input": text}, timeout=60).json()["tokens"]
        return first or total, total, len(tokens), output


def measure(engine: Any, sizes: list[int], tag: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for size in sizes:
        ttft, _, prompt, _ = engine.stream(document(f"{tag}cold{size}", size), "Which week lists most?", 1, False)
        row[f"prefill_{size}"] = round(prompt / ttft)
        row[f"prompt_{size}"] = prompt
    shared = document(f"{tag}shared", 4096)
    cold, _, _, _ = engine.stream(shared, "Question one: which week lists the most crates?", 1, True)
    warm, _, _, _ = engine.stream(shared, "Question two: which week lists the fewest crates?", 1, True)
    row |= {"cold_ttft_4k_ms": round(cold * 1000), "cached_ttft_4k_ms": round(warm * 1000),
            "cached_over_cold_4k": round(warm / cold, 4)}  # fmt: skip
    ttft, total, _, output = engine.stream("Tell me a story.", "Make it long.", 128, False)
    row["decode_one"] = round(output / max(total - ttft, 1e-6))
    for clients in (1, 8):
        row |= concurrent(engine, shared, clients)
    return row


def concurrent(engine: Any, shared: str, clients: int) -> dict[str, Any]:
    """`clients` threads, each making REQUESTS requests in turn on the shared cached prefix."""
    results: list[tuple[float, float, int, int]] = []
    lock = threading.Lock()

    errors: list[BaseException] = []

    def client(i: int) -> None:
        for j in range(REQUESTS):
            try:
                outcome = engine.stream(shared, f"Client {i}, question {j}: summarise week {i + j}.", 48, True)
            except Exception as error:  # counted: a server that drops requests under load shows it here
                errors.append(error)
                continue
            with lock:
                results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ttfts = sorted(r[0] for r in results) or [0.0]
    return {
        f"aggregate_output_{clients}": round(sum(r[3] for r in results) / wall, 1),
        f"ttft_p50_{clients}_ms": round(statistics.median(ttfts) * 1000),
        f"ttft_p95_{clients}_ms": round(ttfts[min(len(ttfts) - 1, round(len(ttfts) * 0.95))] * 1000),
        f"errors_{clients}": len(errors),
    }


# -- gateway overhead: the same tokens to vLLM directly ---------------------------------------------


def vllm_direct(vllm_url: str, prompts: list[list[int]]) -> list[float]:
    ttfts = []
    for i, tokens in enumerate(prompts):
        body = {"model": "cachepoint", "prompt": tokens, "max_tokens": 1, "stream": True, "cache_salt": f"direct{i}"}
        started = time.perf_counter()
        with httpx.stream("POST", f"{vllm_url}/v1/completions", json=body, timeout=900) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break
        ttfts.append(time.perf_counter() - started)
    return ttfts


# -- servers ------------------------------------------------------------------------------------------


@contextmanager
def cachepoint_server(config: str, extra: list[str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with tempfile.TemporaryDirectory() as state:
        path = Path(state) / "cachepoint.toml"
        path.write_text(f'[server]\nstate_dir = "{state}"\n[logging]\nfsync = false\n' + config)
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "cachepoint", "serve", "--config", str(path), "--port",
                                    str(port), *extra], stdout=subprocess.DEVNULL, stderr=(Path(state) / "log").open("wb"))  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, process)
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=60)


@contextmanager
def peer_server() -> Iterator[str]:
    port = free_port()
    python = subprocess.run(["bash", "scripts/setup-peer.sh"], capture_output=True, text=True, check=True).stdout
    command = [python.strip().splitlines()[-1], "-m", "llama_cpp.server", "--model", str(embedded_weights("Q4_1")), "--n_ctx", "8192",
               "--n_threads", "2", "--n_threads_batch", "2", "--cache", "true", "--cache_type", "ram",
               "--logits_all", "false", "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait(lambda: httpx.get(f"{url}/v1/models", timeout=1).status_code == 200, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def wait(ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not start")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shipped_embedded(slots: int) -> str:
    """The embedded engine as shipped now (weights auto, flash attention; see bench/llama_settings.py), with
    `slots` requests decoded together."""
    return f"slots = {slots}\ncontext_tokens = 8448\n"


def one_region() -> str:
    """Every Region but us-east-1 down: one engine per server, so every engine here gets the same machine."""
    table = tomllib.loads(resources.files("cachepoint.data").joinpath("regions.toml").read_text())
    return "".join(f"[regions.{r}]\ndown = true\n" for r in table["regions"] if r != "us-east-1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--engines", nargs="+", default=["embedded-before", "embedded", "vllm", "peer"])
    parser.add_argument("--merge", type=Path, help="rows measured earlier (JSON) to keep beside these")
    args = parser.parse_args()
    rows: dict[str, dict[str, Any]] = json.loads(args.merge.read_text()) if args.merge else {}
    before = '[engines.default]\nweights = "Q4_1"\nbatch_tokens = 512\nflash_attention = false\n'
    configs = {"embedded-before": (before, []), "embedded": ("[engines.default]\n" + shipped_embedded(8), []),
               "vllm": ("", ["--engine", "vllm"])}  # fmt: skip
    for name in args.engines:
        if name == "peer":
            with peer_server() as url:
                rows[name] = measure(Peer(url), args.sizes, name)
        else:
            config, extra = configs[name]
            with cachepoint_server(config + one_region(), extra) as (url, _):
                rows[name] = measure(Cachepoint(url), args.sizes, name)
                if name == "vllm":
                    rows[name] |= overhead(url, args.sizes)
        rows[name]["config"] = configs.get(name, ("peer", []))[0]
        print(name, json.dumps(rows[name]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engines.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows, args.sizes))


def overhead(url: str, sizes: list[int]) -> dict[str, Any]:
    """cachepoint-on-vLLM cold TTFT against vLLM called directly with the same token IDs (fresh salts)."""
    vllm_url = httpx.get(f"{url}/cachepoint/cache", timeout=10).json()["backends"]["default"]["url"]
    tokenizer = HfTokenizer(VLLM_MODEL / "tokenizer.json", 8192)
    engine = Cachepoint(url)
    size = sizes[0]
    via, direct = [], []
    for i in range(3):
        text = document(f"over{i}", size)
        via.append(engine.stream(text, "Q?", 1, False)[0])
        rendered = f"<|im_start|>user\n{text}\n\nQ?<|im_end|>\n<|im_start|>assistant\n"
        direct += vllm_direct(vllm_url, [tokenizer.tokenize(rendered, special=True)])
    gap = statistics.median(via) - statistics.median(direct)
    return {"overhead_ms": round(gap * 1000, 1), "overhead_share": round(gap / statistics.median(direct), 4)}


def table(rows: dict[str, dict[str, Any]], sizes: list[int]) -> str:
    base = rows.get("embedded-before", {})
    head = ["engine"] + [f"prefill {round(s / 1024)}k tok/s" for s in sizes]
    head += ["cached / cold TTFT 4k", "decode tok/s", "1 client: output tok/s", "8 clients: output tok/s",
             "8 clients: TTFT p50 / p95"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name] + [f"{r[f'prefill_{s}']:,}{_ratio(r, base, f'prefill_{s}')}" for s in sizes]
        cells += [f"{r['cached_ttft_4k_ms']:,} / {r['cold_ttft_4k_ms']:,} ms ({r['cached_over_cold_4k']:.3f})",
                  str(r["decode_one"]), _load(r, 1), _load(r, 8) + _scaling(r),
                  f"{r['ttft_p50_8_ms']:,} / {r['ttft_p95_8_ms']:,} ms"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load(row: dict[str, Any], clients: int) -> str:
    """Aggregate output tok/s of `clients` (not measured: a row from before the 1-client run existed)."""
    value = row.get(f"aggregate_output_{clients}")
    return "not measured" if value is None else f"{value:.0f}"


def _scaling(row: dict[str, Any]) -> str:
    one, eight = row.get("aggregate_output_1"), row.get("aggregate_output_8")
    return f" ({eight / one:.1f}× 1 client)" if one and eight is not None else ""


def _ratio(row: dict[str, Any], base: dict[str, Any], key: str) -> str:
    return f" ({row[key] / base[key]:.1f}×)" if base.get(key) else ""


if __name__ == "__main__":
    main()
