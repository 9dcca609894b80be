"""An import's bytes as text lines: decoded as they arrive, never held whole, checked as UTF-8."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# A longer line is not a contact (attributes are capped at 16 KB): likely a binary file or a
# CSV quote left open. Refusing it keeps memory flat.
MAX_LINE_CHARS = 1_048_576


class StreamError(Exception):
    """The file cannot be read on from `line` on; rows before it are fine."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class Utf8Chunks(io.RawIOBase):
    """A chunk iterator as a raw byte stream that passes on only valid UTF-8.

    Bytes flow through up to the first invalid sequence; the read after that raises
    StreamError naming its line, so every complete row before it can still be imported.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self.consumed = 0  # bytes taken from the iterator so far
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._view = memoryview(b"")
        self._newlines = 0
        self._failure: StreamError | None = None
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._view:
            if self._failure is not None:
                raise self._failure
            if self._ended:
                return 0
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
                self._finish()
                continue
            self.consumed += len(chunk)
            self._view = memoryview(self._checked(chunk))
        size = min(len(memoryview(buffer)), len(self._view))
        memoryview(buffer).cast("B")[:size] = self._view[:size]
        self._view = self._view[size:]
        return size

    def _checked(self, chunk: bytes) -> bytes:
        if chunk.isascii() and not self._decoder.getstate()[0]:
            self._newlines += chunk.count(b"\n")
            return chunk
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            # exc.object is the decoder's carried-over partial character followed by this chunk.
            carried = len(exc.object) - len(chunk)
            line = self._newlines + exc.object[: exc.start].count(b"\n") + 1
            bad = exc.object[exc.start : exc.start + 4].hex(" ")
            self._failure = StreamError(line, f"is not UTF-8 text (bytes {bad}); save it as UTF-8")
            return chunk[: max(exc.start - carried, 0)]
        self._newlines += chunk.count(b"\n")
        return chunk

    def _finish(self) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            self._failure = StreamError(
                self._newlines + 1, "the file ends in the middle of a UTF-8 character"
            )


def open_text(raw: Utf8Chunks, *, newline: str) -> io.TextIOWrapper:
    """Text over the raw stream; a leading byte-order mark is dropped."""
    return io.TextIOWrapper(
        io.BufferedReader(raw, buffer_size=65_536), encoding="utf-8-sig", newline=newline
    )


def lines(text: io.TextIOBase) -> Iterator[str]:
    """The text's lines with their endings, refusing any longer than MAX_LINE_CHARS."""
    number = 0
    while line := text.readline(MAX_LINE_CHARS):
        number += 1
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise StreamError(
                number, f"is longer than {MAX_LINE_CHARS:,} characters; is this really CSV/NDJSON?"
            )
        yield line
