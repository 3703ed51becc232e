"""Anthropic-shaped cache diagnosis from cachepoint's explanation: each structural reason in Anthropic's order,
then each cache-side reason once the structure matched; and the bounded memory of turns."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cachepoint.cache.diagnosis import Diagnosis, MissReason, diagnose
from cachepoint.cache.plan import CachePlan, CheckpointReport, MissCause, Outcome
from cachepoint.clock import FakeClock
from cachepoint.prompt.fingerprint import PromptFingerprint, fingerprint
from cachepoint.prompt.salt import with_message_salt
from cachepoint.service.diagnoses import DiagnosisMemory
from cachepoint.types import Block, BlockKind, Message, Prompt, Role

SYSTEM = (Block(BlockKind.TEXT, "You are a careful reader."),)
TOOLS = (Block(BlockKind.TEXT, '{"name": "lookup"}'),)
FIRST = Message(Role.USER, (Block(BlockKind.TEXT, "Chapter one?"),))
ANSWER = Message(Role.ASSISTANT, (Block(BlockKind.TEXT, "It begins."),))
SECOND = Message(Role.USER, (Block(BlockKind.TEXT, "Chapter two?"),))
MODEL = "anthropic.claude-sonnet-4-6"


def prompt(*messages: Message, system: tuple[Block, ...] = SYSTEM, tool_choice: object = None) -> Prompt:
    return with_message_salt(Prompt(TOOLS, system, messages), tool_choice=tool_choice)


def turn(p: Prompt, cached: int = 1500, model: str = MODEL, region: str = "us-east-1") -> PromptFingerprint:
    return fingerprint(model, p, region, cached)


def plan(*reports: CheckpointReport, read: int = 0) -> CachePlan:
    return CachePlan(read_tokens=read, reports=reports)


def written(tokens: int, cause: MissCause | None = None) -> CheckpointReport:
    return CheckpointReport(0, tokens, "5m", Outcome.WRITTEN, cause)


PREVIOUS = turn(prompt(FIRST))
NEXT = prompt(FIRST, ANSWER, SECOND)


def test_a_turn_that_read_the_previous_prefix_has_nothing_to_explain() -> None:
    hit = CheckpointReport(0, 1500, "5m", Outcome.HIT)
    assert diagnose(PREVIOUS, turn(NEXT, 1600), plan(hit, written(1600), read=1500)) == Diagnosis()


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        (turn(NEXT, model="anthropic.claude-opus-4-8"), MissReason.MODEL_CHANGED),
        (turn(replace(NEXT, tools=())), MissReason.TOOLS_CHANGED),
        (turn(prompt(FIRST, ANSWER, SECOND, system=(Block(BlockKind.TEXT, "Be brief."),))), MissReason.SYSTEM_CHANGED),
        (turn(prompt(SECOND, ANSWER)), MissReason.MESSAGES_CHANGED),  # altered, not appended to
        (turn(prompt(FIRST, ANSWER, SECOND, tool_choice={"type": "any"})), MissReason.TOOL_CHOICE_CHANGED),
    ],
    ids=["model", "tools", "system", "messages", "tool-choice"],
)
def test_structure_first_with_the_previous_turns_cached_tokens(current: PromptFingerprint, reason: MissReason) -> None:
    assert diagnose(PREVIOUS, current, plan(written(1600, MissCause.PREFIX_CHANGED))) == Diagnosis(reason, 1500)


def test_a_change_after_the_cached_prefix_costs_nothing_and_is_not_reported() -> None:
    hit = CheckpointReport(0, 1500, "5m", Outcome.HIT)
    assert diagnose(PREVIOUS, turn(prompt(SECOND)), plan(hit, read=1500)) == Diagnosis()


def test_the_earliest_divergence_wins() -> None:
    everything = turn(replace(prompt(SECOND), tools=()), model="anthropic.claude-opus-4-8")
    assert diagnose(PREVIOUS, everything, plan()).reason is MissReason.MODEL_CHANGED


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (MissCause.EXPIRED, MissReason.TTL_EXPIRED),
        (MissCause.EVICTED, MissReason.EVICTED),
        (MissCause.REGION_SWITCH, MissReason.REGION_CHANGED),
        (MissCause.REPLICA_LOST, MissReason.REPLICA_LOST),
        (MissCause.SNAPSHOT_UNREADABLE, MissReason.RESTORE_FAILED),
        (MissCause.TOKEN_MISMATCH, MissReason.RESTORE_FAILED),
        (MissCause.DIRECTORY_DOWN, MissReason.UNAVAILABLE),
    ],
)
def test_when_the_structure_matched_the_cache_says_why(cause: MissCause, reason: MissReason) -> None:
    assert diagnose(PREVIOUS, turn(NEXT), plan(written(1600, cause))) == Diagnosis(reason, 1500)


def test_a_partial_read_counts_only_what_was_missed() -> None:
    partial = CheckpointReport(0, 1200, "5m", Outcome.HIT)
    assert diagnose(PREVIOUS, turn(NEXT), plan(partial, written(1600, MissCause.EXPIRED), read=1200)) == Diagnosis(
        MissReason.TTL_EXPIRED, 300)


def test_markers_that_cannot_reach_the_cached_prefix() -> None:
    below = CheckpointReport(0, 900, "5m", Outcome.BELOW_MINIMUM)
    assert diagnose(PREVIOUS, turn(NEXT), plan(below)) == Diagnosis(MissReason.BELOW_MINIMUM, 1500)
    assert diagnose(PREVIOUS, turn(NEXT), plan()) == Diagnosis(MissReason.MARKER_DROPPED, 1500)
    earlier = CheckpointReport(0, 1100, "5m", Outcome.HIT)
    assert diagnose(PREVIOUS, turn(NEXT), plan(earlier, read=1100)) == Diagnosis(MissReason.MARKER_DROPPED, 400)


def test_a_new_cache_in_another_region_and_an_unknown_turn() -> None:
    elsewhere = turn(NEXT, region="us-west-2")
    assert diagnose(PREVIOUS, elsewhere, plan(written(1600, MissCause.NEW))).reason is MissReason.REGION_CHANGED
    assert diagnose(PREVIOUS, turn(NEXT), plan(written(1600, MissCause.NEW))).reason is MissReason.UNAVAILABLE
    assert diagnose(None, turn(NEXT), plan()) == Diagnosis(MissReason.PREVIOUS_MESSAGE_NOT_FOUND)
    assert not MissReason.PREVIOUS_MESSAGE_NOT_FOUND.counts_tokens and MissReason.TTL_EXPIRED.counts_tokens


def test_markers_do_not_change_a_fingerprint() -> None:
    from cachepoint.types import Checkpoint, Ttl

    marked = (Block(BlockKind.TEXT, "You are a careful reader.", Checkpoint(Ttl.FIVE_MINUTES, "system.0")),)
    assert turn(prompt(FIRST, system=marked)) == PREVIOUS


def test_the_memory_is_per_account_bounded_and_forgets_after_an_hour() -> None:
    clock = FakeClock()
    memory = DiagnosisMemory(clock, max_turns=3)
    memory.remember("111122223333", "msg_a", PREVIOUS)
    assert memory.recall("111122223333", "msg_a") is PREVIOUS
    assert memory.recall("444455556666", "msg_a") is None  # ids never cross accounts
    assert memory.recall("111122223333", None) is None
    for name in ("msg_b", "msg_c", "msg_d"):
        memory.remember("111122223333", name, PREVIOUS)
    assert len(memory) == 3 and memory.recall("111122223333", "msg_a") is None  # the oldest went first
    clock.tick(3601)
    assert memory.recall("111122223333", "msg_d") is None


def test_the_memory_is_bounded_in_bytes_whatever_the_conversations_length() -> None:
    memory = DiagnosisMemory(FakeClock(), max_bytes=100_000)
    long = turn(prompt(*[FIRST, ANSWER] * 2000))  # 4,000 messages: 48 KB of digests
    for name in ("a", "b", "c"):
        memory.remember("111122223333", name, long)
    assert memory.num_bytes <= 100_000 and len(memory) == 2
    assert memory.recall("111122223333", "a") is None and memory.recall("111122223333", "c") is long
    memory.remember("111122223333", "c", PREVIOUS)  # replacing a turn releases its bytes
    assert memory.num_bytes == long.num_bytes + PREVIOUS.num_bytes
