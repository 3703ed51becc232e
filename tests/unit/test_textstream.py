from cachepoint.engine.textstream import TextStream


def feed(stream: TextStream, pieces: list[bytes]) -> list[str]:
    return [stream.push(p) for p in pieces] + [stream.finish()]


def test_plain_text_passes_through() -> None:
    s = TextStream()
    assert feed(s, [b"Hel", b"lo"]) == ["Hel", "lo", ""]
    assert s.text == "Hello" and s.stop_sequence is None


def test_split_utf8_is_held_until_complete() -> None:
    s = TextStream()
    euro = "€".encode()
    assert feed(s, [euro[:1], euro[1:]]) == ["", "€", ""]


def test_stop_sequence_across_tokens_is_cut_and_never_streamed() -> None:
    s = TextStream(("STOP",))
    out = feed(s, [b"abc S", b"TO", b"P tail", b"more"])
    assert "".join(out) == "abc "
    assert out[0] == "abc "  # "S" held back: it might start STOP
    assert s.stop_sequence == "STOP" and s.text == "abc "


def test_held_back_prefix_is_released_when_it_turns_out_not_to_be_a_stop() -> None:
    s = TextStream(("STOP",))
    assert feed(s, [b"ST", b"AR"]) == ["", "STAR", ""]


def test_earliest_of_several_stop_sequences_wins() -> None:
    s = TextStream(("world", "lo w"))
    feed(s, [b"hello world"])
    assert s.text == "hel" and s.stop_sequence == "lo w"
