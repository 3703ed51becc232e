"""Anthropic's cache diagnosis (`diagnostics` in the body, the answer in the Message's `diagnostics`) on /v1/messages
and Bedrock Runtime's /anthropic/v1/messages, in process on the fake engine with an injected clock: exact members,
JSON and SSE, Anthropic's structural reasons and cachepoint's cache-side ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from cachepoint.api.app import create_app
from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.api.test_routes_anthropic import HEADERS
from tests.api.wire import ASSISTANT_TAIL, NEXT_USER, SYSTEM_OPENER, anthropic_error, sse

DOCUMENT = "0123456789" * 110  # 1,100 tokens on the fake engine
SYSTEM = [{"type": "text", "text": DOCUMENT, "cache_control": {"type": "ephemeral"}}]
CACHED = SYSTEM_OPENER + len(DOCUMENT)  # what the first turn writes
OTHER_KEY = HEADERS | {"x-api-key": "sk-ant-other"}


@pytest.fixture(params=[False], ids=["explicit-only"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, FakeClock]]:
    """Implicit caching off unless a test asks for it: an unmarked turn then reads nothing (`marker_dropped`)."""
    clock = FakeClock()
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, implicit_caching=request.param)
    services = build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"),
                              clock=clock)  # fmt: skip
    with TestClient(create_app(services)) as client:
        yield client, clock


def ask(client: TestClient, *turns: str, previous: str | None = "absent", headers: dict[str, str] = HEADERS,
        path: str = "/v1/messages", **extra: Any) -> dict[str, Any]:  # fmt: skip
    roles = ["user", "assistant"]
    body: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 2, "system": SYSTEM,
                            "messages": [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]} | extra  # fmt: skip
    if previous != "absent":
        body["diagnostics"] = {"previous_message_id": previous}
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def reason(kind: str, missed: int | None = None) -> dict[str, Any]:
    cause: dict[str, Any] = {"type": kind} | ({} if missed is None else {"cache_missed_input_tokens": missed})
    return {"cache_miss_reason": cause}


def test_without_the_field_there_is_no_member_and_a_first_turn_is_null(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    assert "diagnostics" not in ask(client, "Q1?")
    first = ask(client, "Q1?", previous=None)
    assert first["diagnostics"] is None and first["usage"]["cache_read_input_tokens"] == CACHED
    second = ask(client, "Q1?", "A1.", "Q2?", previous=first["id"])
    assert second["diagnostics"] is None and second["usage"]["cache_read_input_tokens"] == CACHED  # read: null


def test_structural_changes_in_anthropics_order(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    first = ask(client, "Q1?", previous=None)
    other_system = [{"type": "text", "text": DOCUMENT[::-1], "cache_control": {"type": "ephemeral"}}]
    assert ask(client, "Q1?", previous=first["id"], system=other_system)["diagnostics"] == reason(
        "system_changed", CACHED)
    assert ask(client, "Q1?", previous=first["id"], model="claude-opus-4-8")["diagnostics"] == reason(
        "model_changed", CACHED)
    assert ask(client, "Q0?", "A0.", "Q2?", previous=first["id"])["diagnostics"] is None  # the system prefix was read
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert ask(client, "Q1?", previous=first["id"], tools=tools)["diagnostics"] == reason("tools_changed", CACHED)


def test_tool_choice_invalidates_the_messages_part_only(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    marked = [{"type": "text", "text": DOCUMENT, "cache_control": {"type": "ephemeral"}}]
    first = ask(client, marked, previous=None, system="Short.", tools=tools)  # type: ignore[arg-type]
    written = first["usage"]["cache_creation_input_tokens"]
    choice = ask(client, marked, previous=first["id"], system="Short.", tools=tools, tool_choice={"type": "any"})  # type: ignore[arg-type]
    assert choice["diagnostics"] == reason("tool_choice_changed", written)  # Anthropic says `unavailable` here


def test_a_changed_message_before_the_cached_point(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    marked = [{"type": "text", "text": DOCUMENT, "cache_control": {"type": "ephemeral"}}]
    first = ask(client, marked, previous=None, system="Short.")  # type: ignore[arg-type]
    written = first["usage"]["cache_creation_input_tokens"]
    assert written > 1100
    altered = [{"type": "text", "text": DOCUMENT[:-1] + "!", "cache_control": {"type": "ephemeral"}}]
    after = ask(client, altered, previous=first["id"], system="Short.")  # type: ignore[arg-type]
    assert after["diagnostics"] == reason("messages_changed", written)


def test_cache_side_reasons_once_the_structure_matched(served: tuple[TestClient, FakeClock]) -> None:
    client, clock = served
    first = ask(client, "Q1?", previous=None)
    clock.tick(301)  # past the 5-minute TTL
    expired = ask(client, "Q1?", "A1.", "Q2?", previous=first["id"])
    assert expired["diagnostics"] == reason("ttl_expired", CACHED)
    unmarked = ask(client, "Q1?", "A1.", "Q2?", previous=expired["id"], system=DOCUMENT)
    assert unmarked["diagnostics"] == reason("marker_dropped", CACHED)


@pytest.mark.parametrize("served", [True], ids=["implicit"], indirect=True)
def test_with_implicit_caching_an_unmarked_turn_still_reads(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    first = ask(client, "Q1?", previous=None)
    unmarked = ask(client, "Q1?", "A1.", "Q2?", previous=first["id"], system=DOCUMENT)
    assert unmarked["diagnostics"] is None and unmarked["usage"]["cache_read_input_tokens"] == CACHED


def test_unknown_and_other_accounts_ids_are_not_found(served: tuple[TestClient, FakeClock]) -> None:
    client, clock = served
    first = ask(client, "Q1?", previous=None)
    assert ask(client, "Q1?", previous="msg_nope")["diagnostics"] == reason("previous_message_not_found")
    assert ask(client, "Q1?", previous=first["id"], headers=OTHER_KEY)["diagnostics"] == reason(
        "previous_message_not_found")
    clock.tick(3601)  # remembered for an hour
    assert ask(client, "Q1?", previous=first["id"])["diagnostics"] == reason("previous_message_not_found")


def test_streams_carry_it_on_message_start(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    first = ask(client, "Q1?", previous=None)
    body = {"model": "claude-sonnet-4-6", "max_tokens": 2, "stream": True, "system": SYSTEM[0]["text"],
            "messages": [{"role": "user", "content": "Q1?"}], "diagnostics": {"previous_message_id": first["id"]}}  # fmt: skip
    events = sse(client.post("/v1/messages", json=body, headers=HEADERS).text)
    start = events[0][1]["message"]
    assert events[0][0] == "message_start" and start["diagnostics"] == reason("marker_dropped", CACHED)
    assert all("diagnostics" not in data for _, data in events[1:])


def test_bedrock_runtimes_anthropic_route_serves_it_too(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    bearer = {"authorization": "Bearer bedrock-api-key-example", "anthropic-version": "2023-06-01"}
    model = {"model": "us.anthropic.claude-sonnet-4-6", "path": "/anthropic/v1/messages", "headers": bearer}
    first = ask(client, "Q1?", previous=None, **model)
    assert first["id"].startswith("msg_bdrk_") and first["diagnostics"] is None
    assert ask(client, "Q1?", "A1.", "Q2?", previous=first["id"], **model)["diagnostics"] is None
    assert ask(client, "Q1?", previous=first["id"], **model, system="Other.")["diagnostics"] == reason(
        "system_changed", CACHED)


def test_a_hostile_diagnostics_member_is_refused(served: tuple[TestClient, FakeClock]) -> None:
    client, _ = served
    base = {"model": "claude-sonnet-4-6", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}
    for member, message in [
        ({"previous_message_id": "m" * 129}, "diagnostics.previous_message_id: String should have at most 128 characters"),
        ({"previous_message_id": 7}, "diagnostics.previous_message_id: Input should be a valid string"),
        ({"previous": "x"}, "diagnostics.previous: Extra inputs are not permitted"),
        ("yes", "diagnostics: Input should be a valid dictionary or instance of DiagnosticsIn"),
    ]:
        response = client.post("/v1/messages", json=base | {"diagnostics": member}, headers=HEADERS)
        assert anthropic_error(response) == (
            400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})


def test_the_tokens_count_what_would_have_been_read() -> None:
    """The first turn cached its system prompt: CACHED tokens, the next turn's user opener excluded."""
    assert CACHED == 1 + len("system\n") + 1100 and NEXT_USER > 0 and ASSISTANT_TAIL > 0
