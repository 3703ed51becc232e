"""Token bytes → text deltas, with stop sequences.

Holds back an incomplete UTF-8 sequence, and any tail that could still grow into a stop sequence, so
a streamed delta never has to be taken back. Pure; one instance per generation.
"""

from __future__ import annotations

import codecs


class TextStream:
    def __init__(self, stop_sequences: tuple[str, ...] = ()) -> None:
        self._stops = tuple(s for s in stop_sequences if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.text = ""
        self.stop_sequence: str | None = None

    def push(self, data: bytes) -> str:
        """Feed one token's bytes; returns the text that is now final (maybe empty)."""
        if self.stop_sequence is not None:
            return ""
        self._pending += self._decoder.decode(data)
        hit = self._first_stop()
        if hit is not None:
            index, self.stop_sequence = hit
            return self._release(index, drop_rest=True)
        return self._release(len(self._pending) - self._held_back())

    def finish(self) -> str:
        """No more tokens: release everything still held."""
        if self.stop_sequence is None:
            self._pending += self._decoder.decode(b"", final=True)
        return self._release(len(self._pending), drop_rest=True)

    def _first_stop(self) -> tuple[int, str] | None:
        found = [(i, s) for s in self._stops if (i := self._pending.find(s)) >= 0]
        return min(found) if found else None

    def _held_back(self) -> int:
        """Length of the longest suffix of pending text that is a proper prefix of a stop sequence."""
        longest = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def _release(self, upto: int, *, drop_rest: bool = False) -> str:
        out, self._pending = self._pending[:upto], "" if drop_rest else self._pending[upto:]
        self.text += out
        return out
