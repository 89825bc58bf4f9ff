"""A small, fast Server-Sent Events parser for Gemini's ``alt=sse`` streams.

Gemini sends one JSON object per event as ``data: {…}\\r\\n\\r\\n``. This follows the WHATWG
event-stream rules that matter for that: lines end in ``\\n`` or ``\\r\\n`` (possibly split across
reads), several ``data:`` lines in one event join with ``\\n``, lines starting with ``:`` are
comments, other fields (``event``, ``id``, ``retry``) are ignored. A bare ``\\r`` line ending is
not supported: Google never sends it, and checking for it would cost every read.
A large event (a generated image is megabytes of base64 on one line) arriving in many reads is
buffered as a list of pieces and joined once, so parsing stays linear in its size.
"""

from __future__ import annotations


class SSEParser:
    """Feed it bytes as they arrive; it returns the data of each event completed so far."""

    __slots__ = ("_pieces", "_data")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []  # bytes after the last line end, not yet a whole line
        self._data: list[bytes] = []  # data lines of the event being read

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            if chunk:
                self._pieces.append(chunk)
            return []
        if self._pieces:
            self._pieces.append(chunk)
            buf = b"".join(self._pieces)
            self._pieces = []
        else:
            buf = chunk
        events: list[bytes] = []
        data = self._data
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            stop = end - 1 if end > start and buf[end - 1] == 13 else end  # drop "\r"
            if stop == start:  # blank line: dispatch the event
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = []
            elif buf.startswith(b"data:", start, stop):
                value = start + 6 if buf[start + 5 : start + 6] == b" " else start + 5
                data.append(buf[value:stop])
            elif buf[start] != 58 and buf[start:stop] == b"data":  # 58 is ":" (a comment)
                data.append(b"")
            start = end + 1
        self._data = data
        if start < len(buf):
            self._pieces.append(buf[start:])
        return events

    def flush(self) -> list[bytes]:
        """At end of stream, the event that lacks only its closing blank line (some servers end
        the last event with a single line end); the caller checks it is whole."""
        tail = b"".join(self._pieces).rstrip(b"\r\n")
        data, self._data, self._pieces = self._data, [], []
        if tail.startswith(b"data:"):
            data.append(tail[6:] if tail[5:6] == b" " else tail[5:])
        elif tail and not tail.startswith(b":"):
            data.append(tail)  # a line cut short: not JSON, so the caller sees the cut
        return [b"\n".join(data)] if data else []

    @property
    def pending(self) -> bool:
        """True when an event has started but not ended: at end of stream, a cut."""
        return bool(self._data) or any(p.strip() for p in self._pieces)
