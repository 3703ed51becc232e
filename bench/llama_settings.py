"""The embedded engine's settings, measured side by side in one run: weight encodings (Q4_1 as shipped,
Q8_0, F16, BF16 re-encoded at set-up), batch/ubatch 512 and 2048, flash attention off and on.

For each: cold prefill tok/s at 1k/4k/8k tokens, decode tok/s at short and long context (64 tokens
after a 16- and a 4,000-token prompt), and whether greedy output differs from the shipped Q4_1's.
Writes bench/results/llama_settings.json and prints a Markdown table (the README quotes it).

    .venv/bin/python bench/llama_settings.py [--sizes 1024 4096 8192] [--weights Q4_1 BF16 ...]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from pathlib import Path

from cachepoint.engine.factory import embedded_weights
from cachepoint.engine.llamacpp import LlamaCppEngine
from cachepoint.engine.protocol import Finished, GenerateJob, Prefilled
from cachepoint.types import SamplingParams

RESULTS = Path(__file__).parent / "results" / "llama_settings.json"
TEXT = "The harbour master wrote about cargo, tides and weather in the ledger every single morning. "


def prompt(engine: LlamaCppEngine, num_tokens: int) -> tuple[int, ...]:
    tokens = engine.tokenize(TEXT * (num_tokens // 10 + 10), special=False)
    return tuple(tokens[:num_tokens])


def run(engine: LlamaCppEngine, tokens: tuple[int, ...], max_tokens: int) -> tuple[float, float, list[int]]:
    """(prefill s, decode s, output tokens) for one cold job at temperature 0."""
    job = GenerateJob(tokens, SamplingParams(max_tokens=max_tokens, temperature=0.0))
    started = time.perf_counter()
    prefill_s, output = 0.0, []
    for event in engine.run(job):
        if isinstance(event, Prefilled):
            prefill_s = event.prefill_s
            decode_from = time.perf_counter()
        elif not isinstance(event, Finished):
            output.append(event)
    decode_s = time.perf_counter() - decode_from if output else 0.0
    del started
    return prefill_s, decode_s, output


def measure(weights: str, batch: int, flash: bool, sizes: list[int], long: int) -> dict[str, object]:
    engine = LlamaCppEngine(embedded_weights(weights), context_tokens=max(*sizes, long) + 256, threads=2,
                            batch_tokens=batch, ubatch_tokens=batch, flash_attention=flash)  # fmt: skip
    row: dict[str, object] = {"weights": weights, "batch": batch, "flash_attention": flash}
    for size in sizes:
        prefill_s, _, _ = run(engine, prompt(engine, size), 1)
        row[f"prefill_{size}"] = round(size / prefill_s)
    for label, context in (("short", 16), ("long", long)):
        _, decode_s, output = run(engine, prompt(engine, context), 64)
        row[f"decode_{label}"] = round(len(output) / decode_s) if decode_s else 0
        row[f"greedy_{label}"] = hashlib.sha256(str(output).encode()).hexdigest()[:12]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--weights", nargs="+", default=["Q4_1", "Q8_0", "F16", "BF16"])
    parser.add_argument("--batches", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--long", type=int, default=4000, help="the context of the long decode")
    args = parser.parse_args()
    rows = []
    for weights, batch, flash in itertools.product(args.weights, args.batches, (False, True)):
        rows.append(measure(weights, batch, flash, args.sizes, args.long))
        print(json.dumps(rows[-1]), flush=True)
    baseline = rows[0]
    for row in rows:
        row["greedy_changed"] = any(row[k] != baseline[k] for k in ("greedy_short", "greedy_long"))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows, args.sizes))


def table(rows: list[dict[str, object]], sizes: list[int]) -> str:
    head = ["weights", "batch", "flash attn"] + [f"prefill {s // 1024}k tok/s" for s in sizes]
    head += ["decode short", "decode long", "greedy output vs Q4_1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["weights"], r["batch"], "on" if r["flash_attention"] else "off"]
        cells += [f"{r[f'prefill_{s}']:,}" for s in sizes] + [r["decode_short"], r["decode_long"]]
        cells.append("changed" if r["greedy_changed"] else "same")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
