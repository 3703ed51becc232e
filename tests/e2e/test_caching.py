"""Prompt caching end to end, on both engines: boto3 → real server → real llama.cpp KV snapshots, or a real
vLLM process with its own prefix cache; Bedrock's numbers either way. The family runs once per engine."""

from __future__ import annotations

import json
from typing import Any
from collections.abc import Callable

import pytest

from cachepoint.clock import FakeClock
from tests.e2e.conftest import clients_of
from tests.live import LiveServer

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # min 1,024 tokens per checkpoint, 5m and 1h
CP = {"cachePoint": {"type": "default"}}


@pytest.fixture(scope="module", params=["llamacpp", "vllm"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def live(live: LiveServer, engine: str, request: pytest.FixtureRequest) -> LiveServer:
    """The session's llama.cpp server, or the session's vLLM one (started on first use)."""
    server: LiveServer = live if engine == "llamacpp" else request.getfixturevalue("vllm_live")
    return server


@pytest.fixture
def clock(engine: str, request: pytest.FixtureRequest) -> FakeClock:
    chosen: FakeClock = request.getfixturevalue("llama_clock" if engine == "llamacpp" else "vllm_clock")
    return chosen


@pytest.fixture
def client_for(live: LiveServer) -> Callable[..., Any]:
    return clients_of(live)


@pytest.fixture
def runtime(client_for: Callable[..., Any]) -> Any:
    return client_for()


def document(tag: str, sentences: int = 48) -> str:
    """About 23 tokens a sentence: 48 sentences (~1,100 tokens) sit just above the 1,024-token minimum."""
    return " ".join(
        f"Note {tag}-{i}: the ledger for week {i} lists {i * 7} crates of apples." for i in range(sentences)
    )


def converse(runtime: Any, content: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = runtime.converse(
        modelId=SONNET,
        messages=[{"role": "user", "content": content}],
        inferenceConfig={"maxTokens": 8, "temperature": 0},
        **extra,
    )
    return response


def cache_header(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["HTTPHeaders"].get("x-cachepoint-cache", ""))


def totals(response: dict[str, Any]) -> tuple[int, int, int]:
    u = response["usage"]
    return u["cacheReadInputTokens"], u["cacheWriteInputTokens"], u["inputTokens"]


def test_write_then_read_restores_real_kv_with_identical_output(runtime: Any) -> None:
    content = [{"text": document("wr")}, CP, {"text": "Summarise the notes."}]
    first = converse(runtime, content)
    read, written, uncached = totals(first)
    assert read == 0 and written >= 1024 and uncached < 30
    assert first["usage"]["cacheDetails"] == [{"ttl": "5m", "inputTokens": written}]
    assert cache_header(first) == f"written:{written}:5m:new"
    second = converse(runtime, content)
    assert totals(second) == (written, 0, uncached)
    assert "cacheDetails" not in second["usage"]
    assert cache_header(second) == f"hit:{written}:5m:ram"
    assert second["output"] == first["output"]  # temperature 0: the restored KV is the computed KV
    assert second["usage"]["totalTokens"] == read + written + uncached + second["usage"]["outputTokens"]


def test_a_new_question_reads_the_prefix_and_pays_only_the_tail(runtime: Any) -> None:
    doc = document("nq")
    written = totals(converse(runtime, [{"text": doc}, CP, {"text": "First question?"}]))[1]
    read, write, uncached = totals(
        converse(runtime, [{"text": doc}, CP, {"text": "A different, longer second question?"}])
    )
    assert (read, write) == (written, 0) and 0 < uncached < 30


def test_one_changed_character_before_the_checkpoint_misses(runtime: Any) -> None:
    doc = document("ch")
    converse(runtime, [{"text": doc}, CP, {"text": "Q?"}])
    changed = doc.replace("apples", "applef", 1)
    response = converse(runtime, [{"text": changed}, CP, {"text": "Q?"}])
    read, written, _ = totals(response)
    assert read == 0 and written >= 1024
    assert cache_header(response).endswith(":prefix-changed")


def test_two_checkpoints_with_a_swapped_document(runtime: Any) -> None:
    instructions = document("instr")
    first = converse(runtime, [{"text": instructions}, CP, {"text": document("docA", 10)}, CP, {"text": "Q?"}])
    instr_tokens = runtime.count_tokens(
        modelId=SONNET.removeprefix("us."),
        input={"converse": {"messages": [{"role": "user", "content": [{"text": instructions}, CP]}]}},
    )["inputTokens"]
    swapped = converse(runtime, [{"text": instructions}, CP, {"text": document("docB", 10)}, CP, {"text": "Q?"}])
    read, written, _ = totals(swapped)
    assert read == pytest.approx(instr_tokens, abs=8)  # the count includes the assistant opener tail
    assert read + written == sum(totals(first)[:2])  # same sizes: A and B are equally long
    assert cache_header(swapped).startswith(f"hit:{read}:5m:ram,written:")


def test_below_minimum_succeeds_with_zero_counters(runtime: Any) -> None:
    response = converse(runtime, [{"text": document("small", 20)}, CP, {"text": "Q?"}])
    assert totals(response)[:2] == (0, 0)
    assert response["usage"]["inputTokens"] == response["usage"]["totalTokens"] - response["usage"]["outputTokens"]
    assert cache_header(response).startswith("skipped-below-minimum:")


def validation_message(call: Callable[[], Any], runtime: Any) -> str:
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        call()
    return str(info.value.response["Error"]["Message"])


def test_rule_violations_are_bedrocks_validation_errors(runtime: Any) -> None:
    five = [{"text": f"block {i}"} for i in range(5)]
    content = [part for block in five for part in (block, CP)]
    assert validation_message(lambda: converse(runtime, content), runtime) == (
        "The model returned the following errors: A maximum of 4 blocks with cache_control may be provided. Found 5."
    )
    ttl = [{"text": "a"}, CP, {"text": "b"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    assert validation_message(lambda: converse(runtime, ttl), runtime).startswith(
        "The model returned the following errors: messages.0.content.1.cache_control.ttl: a ttl='1h' cache_control block"
    )
    assert validation_message(lambda: converse(runtime, [CP, {"text": "q"}]), runtime) == (
        "There is nothing available to cache. Please remove the invalid cache point and try again."
    )


def test_checkpoint_on_a_model_without_caching_is_access_denied(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.AccessDeniedException) as info:
        runtime.converse(
            modelId="us.meta.llama3-3-70b-instruct-v1:0", messages=[{"role": "user", "content": [{"text": "x"}, CP]}]
        )
    assert info.value.response["Error"]["Message"] == (
        "You invoked an unsupported model or your request did not allow prompt caching."
    )


def test_another_account_never_reads_the_prefix(client_for: Callable[..., Any]) -> None:
    alice, bob = client_for("AKIDALICE"), client_for("AKIDBOB")
    content = [{"text": document("secret")}, CP, {"text": "Q?"}]
    written = totals(converse(alice, content))[1]
    assert totals(converse(bob, content))[:2] == (0, written)
    assert totals(converse(alice, content))[:2] == (written, 0)


def test_ttl_expires_five_minutes_after_the_last_hit(runtime: Any, clock: FakeClock, engine: str) -> None:
    content = [{"text": document("ttl")}, CP, {"text": "Q?"}]
    written = totals(converse(runtime, content))[1]
    clock.tick(299)
    assert totals(converse(runtime, content))[0] == written  # a hit refreshes the TTL...
    clock.tick(299)
    assert totals(converse(runtime, content))[0] == written  # ...so 598 s after the write it still hits
    clock.tick(300)
    response = converse(runtime, content)
    assert totals(response)[:2] == (0, written)
    assert cache_header(response).endswith(":expired")
    figures = prefill_figures(response)
    if engine == "vllm":  # vLLM has no TTL: it still holds the blocks Bedrock's rules expired, and says so
        assert int(figures["engine_cached"]) > 0 and figures["physical"] == "reused-without-read"
    else:  # llama.cpp's snapshot went with the entry
        assert figures["engine_cached"] == "0" and "physical" not in figures


def test_eviction_under_a_tiny_budget(runtime: Any, live: LiveServer) -> None:
    cache = live.services.inference.cache
    saved = cache.budget_bytes  # type: ignore[attr-defined]
    a = [{"text": document("evA")}, CP, {"text": "Q?"}]
    b = [{"text": document("evB")}, CP, {"text": "Q?"}]
    written = totals(converse(runtime, a))[1]
    budget = int(written * 1.5 * live.services.inference.pools["default"].tokenizer.kv_bytes_per_token)
    cache.resize(budget)  # type: ignore[attr-defined]  # room for one snapshot, not two
    try:
        assert cache.index.num_entries == 1  # type: ignore[attr-defined]
        converse(runtime, b)  # evicts A, the least recently used
        assert cache.index.num_bytes <= budget  # type: ignore[attr-defined]
        response = converse(runtime, a)
        assert totals(response)[0] == 0 and cache_header(response).endswith(":evicted")
    finally:
        cache.resize(saved)  # type: ignore[attr-defined]


def test_invoke_model_cache_control_with_one_hour_ttl(runtime: Any) -> None:
    def invoke(question: str) -> tuple[dict[str, Any], dict[str, str]]:
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 8,
            "temperature": 0,
            "system": [{"type": "text", "text": document("inv"), "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": question}],
        }
        response = runtime.invoke_model(modelId=SONNET, body=json.dumps(body))
        return json.loads(response["body"].read()), response["ResponseMetadata"]["HTTPHeaders"]

    first, headers = invoke("Q1?")
    usage = first["usage"]
    assert usage["cache_read_input_tokens"] == 0 and usage["cache_creation_input_tokens"] >= 1024
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": usage["cache_creation_input_tokens"],
    }
    assert headers["x-amzn-bedrock-cache-write-input-token-count"] == str(usage["cache_creation_input_tokens"])
    second, headers = invoke("Q2, a little longer?")
    assert second["usage"]["cache_read_input_tokens"] == usage["cache_creation_input_tokens"]
    assert second["usage"]["cache_creation_input_tokens"] == 0
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == str(usage["cache_creation_input_tokens"])


def test_converse_and_invoke_share_the_cache(runtime: Any) -> None:
    doc = document("shared")
    written = totals(converse(runtime, [{"text": "x"}], system=[{"text": doc}, CP]))[1]
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 4,
        "system": [{"type": "text", "text": doc, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "y"}],
    }
    usage = json.loads(runtime.invoke_model(modelId=SONNET, body=json.dumps(body))["body"].read())["usage"]
    assert usage["cache_read_input_tokens"] == written


def test_invoke_model_rule_violations(runtime: Any) -> None:
    def invoke(messages: list[dict[str, Any]]) -> str:
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4, "messages": messages}
        return validation_message(lambda: runtime.invoke_model(modelId=SONNET, body=json.dumps(body)), runtime)

    marked = lambda text, ttl="5m": {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}  # noqa: E731
    assert invoke([{"role": "user", "content": [marked(f"b{i}") for i in range(5)]}]) == (
        "The model returned the following errors: A maximum of 4 blocks with cache_control may be provided. Found 5."
    )
    assert invoke([{"role": "user", "content": [marked("a"), marked("b", "1h")]}]).startswith(
        "The model returned the following errors: messages.0.content.1.cache_control.ttl: a ttl='1h'"
    )
    top_level = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 4,
        "cache_control": {"type": "ephemeral"},
        "messages": [{"role": "user", "content": "x"}],
    }
    assert validation_message(lambda: runtime.invoke_model(modelId=SONNET, body=json.dumps(top_level)), runtime) == (
        "cache_control: Extra inputs are not permitted")  # /v1/messages keeps it: automatic caching


def prefill_figures(response: dict[str, Any]) -> dict[str, str]:
    header = response["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-prefill"]
    return dict(part.split("=", 1) for part in header.split(";"))


def test_no_tenant_physically_reuses_another_tenants_kv(client_for: Callable[..., Any]) -> None:
    """Bedrock's accounting says B writes; the engine must agree physically: B reuses no token of A's KV
    (vLLM: a cache_salt per account, Region and base model; llama.cpp: a snapshot per scope)."""
    alice, bob = client_for("AKIDPHYSA"), client_for("AKIDPHYSB")
    content = [{"text": document("physical")}, CP, {"text": "Q?"}]
    converse(alice, content)
    again = converse(alice, content)
    assert int(prefill_figures(again)["engine_cached"]) > 0
    first_of_bob = converse(bob, content)
    assert totals(first_of_bob)[0] == 0 and int(prefill_figures(first_of_bob)["engine_cached"]) == 0
