"""Our encoder against botocore's own decoder (the oracle), byte by byte."""

import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from cachepoint.api.eventstream import event_frame, exception_frame

VECTOR = bytes.fromhex(
    "000000760000005296d5fade0b3a6576656e742d7479706507000c6d65737361676553746172740d3a636f6e74656e742d747970650700"
    "106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22726f6c65223a22617373697374"
    "616e74227d6fa8c599"
)


def decode(data: bytes) -> list:  # type: ignore[type-arg]
    buffer = EventStreamBuffer()
    messages = []
    for i in range(len(data)):  # one byte at a time, as the worst client would deliver them
        buffer.add_data(data[i : i + 1])
        messages += list(buffer)
    return messages


def test_matches_the_published_test_vector() -> None:
    assert event_frame("messageStart", {"role": "assistant"}) == VECTOR


def test_botocore_decodes_events_and_exceptions() -> None:
    frames = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}})
    frames += exception_frame("throttlingException", {"message": "slow down"})
    first, second = decode(frames)
    assert first.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(first.payload) == {"contentBlockIndex": 0, "delta": {"text": "héllo"}}
    assert second.headers[":exception-type"] == "throttlingException"
    assert json.loads(second.payload) == {"message": "slow down"}


@pytest.mark.parametrize("position", [5, 20, 60, 117])
def test_any_flipped_bit_is_rejected(position: int) -> None:
    corrupted = bytearray(VECTOR)
    corrupted[position] ^= 0x01
    with pytest.raises(ChecksumMismatch):
        decode(bytes(corrupted))
