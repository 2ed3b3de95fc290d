"""Command output kept in bounded memory: the head and the tail, with the middle counted and dropped.

Example:
    >>> cap = OutputCap(10)
    >>> cap.add(b"0123456789abcdefghij")
    >>> cap.text()
    ('012345\\n[... 10 bytes truncated ...]\\nghij', True)
"""

from __future__ import annotations

# The tail buffer may grow to twice its size plus one read before it is trimmed, so trimming (a copy) happens
# once per ~tail_size bytes, not on every read.
_SLACK_BYTES = 1 << 20


class OutputCap:
    """Keeps the first 60% and the last 40% of `cap` bytes of a stream, and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.head_size = cap * 6 // 10
        self.tail_size = cap - self.head_size
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        """Bytes added so far, kept or not."""

    def add(self, data: bytes) -> None:
        """Append `data` to the stream."""
        self.total += len(data)
        room = self.head_size - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.tail_size + _SLACK_BYTES:
                del self.tail[: len(self.tail) - self.tail_size]

    def text(self) -> tuple[str, bool]:
        """The kept output as UTF-8 text (invalid bytes replaced), and whether anything was dropped; dropped
        bytes are replaced by a line ``[... N bytes truncated ...]``."""
        tail = self.tail[len(self.tail) - self.tail_size :] if len(self.tail) > self.tail_size else self.tail
        dropped = self.total - len(self.head) - len(tail)
        if dropped <= 0:
            return (self.head + tail).decode("utf-8", errors="replace"), False
        marker = f"\n[... {dropped} bytes truncated ...]\n".encode()
        return (self.head + marker + tail).decode("utf-8", errors="replace"), True
