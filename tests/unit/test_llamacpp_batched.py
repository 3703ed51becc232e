"""The batched llama.cpp engine on the real embedded model: every job's events are exactly those the
single-sequence engine gives it, whatever runs beside it; prefill is chunked; snapshots interoperate."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

pytest.importorskip("llama_cpp")

from cachepoint.engine.factory import build_backend, build_engine, embedded_model_path  # noqa: E402
from cachepoint.engine.llamacpp import LlamaCppEngine  # noqa: E402
from cachepoint.engine.llamacpp_batched import BatchedBackend, BatchedRunner, share  # noqa: E402
from cachepoint.engine.llamacpp_slots import SlotContext  # noqa: E402
from cachepoint.engine.protocol import EngineEvent, Finished, GenerateJob, Prefilled, Snapshot  # noqa: E402
from cachepoint.errors import ModelError, ServiceUnavailableError  # noqa: E402
from cachepoint.settings import EngineSettings  # noqa: E402
from cachepoint.types import SamplingParams  # noqa: E402

T = TypeVar("T")
CONTEXT = 3072
GREEDY = SamplingParams(max_tokens=32, temperature=0.0)


def model() -> Path:
    try:
        return embedded_model_path()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))


def batched(slots: int, *, context_tokens: int = CONTEXT, batch_tokens: int = 512, **kw: int) -> BatchedRunner:
    context = SlotContext(
        model(), slots=slots, context_tokens=context_tokens, threads=2, batch_tokens=batch_tokens, flash_attention=False
    )
    return BatchedRunner(context, name="test", **kw)


def passing(work: Callable[[], T]) -> T:
    """Single-engine work runs on a thread that then ends: a thread that decoded and lives on would slow
    the batched engine's thread (llama.cpp's OpenMP teams; see `BatchedRunner._has_work`)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


@pytest.fixture(scope="module")
def single() -> LlamaCppEngine:
    return passing(lambda: LlamaCppEngine(model(), context_tokens=CONTEXT, threads=2))


@pytest.fixture(scope="module")
def runner() -> Iterator[BatchedRunner]:
    runner = batched(4)
    yield runner
    runner.close()


def chat(single: LlamaCppEngine, text: str) -> tuple[int, ...]:
    return tuple(single.tokenize(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n", special=True))


def document(single: LlamaCppEngine, num_items: int) -> tuple[int, ...]:
    items = " ".join(
        f"Item {i}: the {('red', 'blue', 'green')[i % 3]} crate holds {i * 7 % 13} pears." for i in range(num_items)
    )
    return chat(single, f"{items}\nWhich crate holds the most pears?")


def alone(single: LlamaCppEngine, job: GenerateJob) -> list[EngineEvent]:
    """The job's events from the single-sequence engine (a copy of it: leaving a stream sets `cancel`)."""
    return passing(lambda: list(single.run(replace(job, cancel=threading.Event()))))


async def drain(runner: BatchedRunner, job: GenerateJob) -> list[EngineEvent]:
    return [event async for event in runner.stream(job)]


def outputs(events: list[EngineEvent]) -> tuple[list[int], EngineEvent]:
    return [e for e in events if isinstance(e, int)], events[-1]


def assert_all_slots_clear(runner: BatchedRunner) -> None:
    assert runner.num_jobs == 0
    assert [runner.engine.num_tokens(slot) for slot in range(runner.engine.slots)] == [0] * runner.engine.slots


def test_one_job_gives_the_single_engine_events(single: LlamaCppEngine, runner: BatchedRunner) -> None:
    prompt = chat(single, "Write a short poem about a lighthouse.")
    for sampling in (GREEDY, SamplingParams(max_tokens=24, temperature=0.8, top_p=0.9, top_k=40, seed=7)):
        expected = alone(single, GenerateJob(prompt, sampling))
        got = asyncio.run(drain(runner, GenerateJob(prompt, sampling)))
        assert outputs(got) == outputs(expected)
        prefilled = got[0]
        assert isinstance(prefilled, Prefilled)
        assert (prefilled.num_evaluated_tokens, prefilled.engine_cached_tokens) == (len(prompt), 0)
    assert runner.last_prefill is not None
    assert_all_slots_clear(runner)


def test_concurrent_jobs_each_get_what_they_get_alone(
    single: LlamaCppEngine, runner: BatchedRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven jobs on four slots: some queue, they end at different times, freed slots are refilled or
    compacted; each job's tokens and finish are still exactly its own single-engine run's."""
    moves: list[tuple[int, int]] = []
    move = runner.engine.move

    def counted_move(source: int, target: int) -> None:
        moves.append((source, target))
        move(source, target)

    monkeypatch.setattr(runner.engine, "move", counted_move)
    topics = ["a cat", "the sea", "a clock", "winter", "a robot", "bread", "a violin"]
    jobs = [
        GenerateJob(chat(single, f"Tell me about {topic}."), SamplingParams(max_tokens=8 + 6 * i, temperature=0.0))
        for i, topic in enumerate(topics)
    ]
    expected = [outputs(alone(single, job)) for job in jobs]

    async def scenario() -> list[list[EngineEvent]]:
        return await asyncio.gather(*(drain(runner, job) for job in jobs))

    assert [outputs(events) for events in asyncio.run(scenario())] == expected
    assert moves  # a sequence moved down into a freed slot, and decoded on as before
    assert_all_slots_clear(runner)


def test_a_long_cold_prefill_does_not_stop_a_decoding_job(single: LlamaCppEngine) -> None:
    """The prefill goes in chunks of `batch_tokens`; every step also carries the other job's next token."""
    short = GenerateJob(chat(single, "Count slowly from one to fifty."), SamplingParams(max_tokens=60, temperature=0.0))
    long = GenerateJob(document(single, 160), SamplingParams(max_tokens=1, temperature=0.0))
    assert len(long.tokens) > 1800
    runner = batched(2, batch_tokens=256)
    submitted: dict[str, float] = {}
    seen: dict[str, list[tuple[float, EngineEvent]]] = {"short": [], "long": []}
    started = asyncio.Event()  # the short job is decoding

    async def follow(name: str, job: GenerateJob, after: asyncio.Event | None = None) -> None:
        if after is not None:
            await after.wait()
        submitted[name] = time.perf_counter()
        async for event in runner.stream(job):
            seen[name].append((time.perf_counter(), event))
            if len(seen[name]) == 3:
                started.set()

    async def scenario() -> None:
        await asyncio.gather(follow("short", short), follow("long", long, after=started))

    try:
        asyncio.run(scenario())
    finally:
        runner.close()
    prefilled = next(t for t, e in seen["long"] if isinstance(e, Prefilled))
    during = [e for t, e in seen["short"] if submitted["long"] < t < prefilled and isinstance(e, int)]
    print(
        f"\n{len(during)} tokens decoded during the {prefilled - submitted['long']:.1f} s prefill of {len(long.tokens)}"
    )
    assert len(during) >= 4  # about one per 256-token chunk of the ~2,000-token prompt
    assert outputs([e for _, e in seen["short"]]) == outputs(alone(single, short))


def test_snapshots_restore_identically_in_either_engine(single: LlamaCppEngine, runner: BatchedRunner) -> None:
    prompt, sampling = document(single, 16), SamplingParams(max_tokens=16, temperature=0.0)
    cold = outputs(alone(single, GenerateJob(prompt, sampling)))
    offsets = (80, len(prompt) - 20)

    async def taken() -> list[EngineEvent]:  # a neighbour in slot 0 puts the capturing job in slot 1
        neighbour = drain(runner, GenerateJob(chat(single, "Say hello."), sampling))
        events = await asyncio.gather(neighbour, drain(runner, GenerateJob(prompt, sampling, capture_at=offsets)))
        return events[1]

    events = asyncio.run(taken())
    assert outputs(events) == cold
    ours = events[0]
    assert isinstance(ours, Prefilled)
    theirs = alone(single, GenerateJob(prompt, sampling, capture_at=offsets))[0]
    assert isinstance(theirs, Prefilled)
    assert [s.num_tokens for s in ours.snapshots] == list(offsets)
    assert [s.num_bytes for s in ours.snapshots] == [s.num_bytes for s in theirs.snapshots]
    # a snapshot serves any shorter prefix of itself; the single-sequence engine's serve this engine too
    cases = [(s, n) for s in ours.snapshots for n in sorted({80, s.num_tokens})]
    for snapshot, restore_tokens in cases + [(s, s.num_tokens) for s in theirs.snapshots]:
        got = asyncio.run(drain(runner, GenerateJob(prompt, sampling, restore=snapshot, restore_tokens=restore_tokens)))
        assert outputs(got) == cold
        prefilled = got[0]
        assert isinstance(prefilled, Prefilled)
        assert prefilled.engine_cached_tokens == restore_tokens
        assert prefilled.num_evaluated_tokens == len(prompt) - restore_tokens
    for snapshot in ours.snapshots:  # and the other way round
        assert outputs(alone(single, GenerateJob(prompt, sampling, restore=snapshot, restore_tokens=80))) == cold
    assert_all_slots_clear(runner)


def test_cancelling_a_job_frees_its_slot_for_the_next(single: LlamaCppEngine) -> None:
    runner = batched(1, context_tokens=512)
    first = GenerateJob(chat(single, "Tell me a long story."), SamplingParams(max_tokens=400, temperature=0.0))
    queued_then_cancelled = GenerateJob(chat(single, "Never run."), GREEDY)
    last = GenerateJob(chat(single, "Tell me about rivers."), GREEDY)

    async def scenario() -> tuple[list[EngineEvent], list[EngineEvent], list[EngineEvent]]:
        async def leave_early() -> list[EngineEvent]:
            events: list[EngineEvent] = []
            async for event in runner.stream(first):
                events.append(event)
                if len(events) == 5:
                    break  # as a stop sequence or a gone client does: job.cancel is set
            return events

        queued_then_cancelled.cancel.set()
        return await asyncio.gather(leave_early(), drain(runner, queued_then_cancelled), drain(runner, last))

    try:
        began = time.perf_counter()
        events, never, after = asyncio.run(scenario())
        assert time.perf_counter() - began < 20  # not the 400 tokens of the first job
        assert len(events) == 5 and first.cancel.is_set()
        assert never == []  # cancelled while queued: never started
        assert outputs(after) == outputs(alone(single, last))
        assert_all_slots_clear(runner)
    finally:
        runner.close()


def test_the_queue_bound_and_failures(single: LlamaCppEngine) -> None:
    runner = batched(1, context_tokens=256, max_queued_jobs=2)
    story = chat(single, "Tell me a long story.")
    longs = [GenerateJob(story, SamplingParams(max_tokens=200, temperature=0.0)) for _ in range(2)]
    too_long = GenerateJob(tuple(single.tokenize("word " * 400, special=False)), GREEDY)

    async def scenario() -> list[EngineEvent]:
        running = [asyncio.ensure_future(drain(runner, job)) for job in longs]
        await asyncio.sleep(0.2)
        assert runner.num_jobs == 2  # one running, one queued
        with pytest.raises(ServiceUnavailableError):
            await drain(runner, GenerateJob(story, GREEDY))
        for job in longs:
            job.cancel.set()
        await asyncio.gather(*running)
        with pytest.raises(ModelError):  # beyond the context: the job fails alone
            await drain(runner, too_long)
        with pytest.raises(ModelError):  # not a llama.cpp state: likewise
            await drain(runner, GenerateJob(story, GREEDY, restore=Snapshot(bytes(64), 5), restore_tokens=5))
        return await drain(runner, GenerateJob(chat(single, "Hi."), GREEDY))

    try:
        after = asyncio.run(scenario())
        assert isinstance(after[-1], Finished)
        assert_all_slots_clear(runner)
    finally:
        runner.close()


def test_throughput_of_eight_jobs_against_one(single: LlamaCppEngine) -> None:
    runner = batched(8, context_tokens=512)
    prompts = [chat(single, f"Write a long story about the number {i}.") for i in range(8)]

    async def rate(num_jobs: int) -> float:
        jobs = [GenerateJob(prompt, SamplingParams(max_tokens=48, temperature=0.0)) for prompt in prompts[:num_jobs]]
        began = time.perf_counter()
        results = await asyncio.gather(*(drain(runner, job) for job in jobs))
        return sum(len(outputs(events)[0]) for events in results) / (time.perf_counter() - began)

    try:
        one, eight = asyncio.run(rate(1)), asyncio.run(rate(8))
    finally:
        runner.close()
    print(f"\noutput tokens/s: 1 job {one:.0f}, 8 jobs {eight:.0f} ({eight / one:.1f}x)")
    assert eight > one


def test_share_splits_the_prefill_budget_fairly() -> None:
    assert share(512, [1000, 1000]) == [256, 256]
    assert share(512, [100, 1000, 1000]) == [100, 206, 206]
    assert share(512, [10, 20]) == [10, 20]
    assert share(3, [5, 5, 5, 5]) == [0, 1, 1, 1]
    assert share(512, []) == []


def test_slots_select_the_batched_backend(tmp_path: Path) -> None:
    assert isinstance(build_backend(EngineSettings("default", slots=4), build_engine, tmp_path), BatchedBackend)
    with pytest.raises(ValueError, match="slots"):
        EngineSettings("default", kind="fake", slots=2)
    with pytest.raises(ValueError, match="slots"):
        EngineSettings("default", slots=0)
