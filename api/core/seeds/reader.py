"""The user's file as physical lines, read a chunk at a time.

The rule it keeps: what is held of a file is one chunk of text (``CHUNK_CHARS``, completed to the
end of its line), whatever the file's size. Line breaks are universal (CRLF and CR become LF;
line numbers count physical lines), the UTF-8 byte order mark is dropped, and reading stops at
the first NUL character. Bytes that are not UTF-8 are found again, line by line, by
``bad_utf8_lines``. Nothing here reports: the scan and ``prepare_seeds`` do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from api.core.seeds.problems import show

CHUNK_CHARS = 1 << 18
"""How much text is read at a time (then completed to the end of its line)."""


class ReadError(Exception):
    """The user's file could not be read (an OSError while reading, not while writing)."""


class Source:
    """One file's text as physical lines, a chunk at a time: universal newlines (CRLF and CR
    become LF), the UTF-8 BOM dropped. ``lines[i]`` is the next line, numbered ``base + i``.
    Reading stops at the first NUL character (``nul_line``), after checking that the rest decodes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lines: list[str] = []
        self.i = 0
        self.base = 1
        self.quotes = False  # the current chunk holds a '"'
        self.nonblank = False  # some character so far is not whitespace
        self.nul_line: int | None = None
        self.done = False

    def fill(self) -> bool:
        """Make ``lines[i]`` available; False at the end of the file."""
        while self.i >= len(self.lines):
            if self.done:
                return False
            self._load()
        return True

    def next_line(self) -> str | None:
        """The next physical line (the cursor moves past it), None at the end of the file."""
        if not self.fill():
            return None
        self.i += 1
        return self.lines[self.i - 1]

    def _read(self) -> str:
        try:
            return self.stream.read(CHUNK_CHARS)  # (looked up here, so that tests can make it tiny)
        except OSError as err:
            raise ReadError(err.strerror or str(err)) from err

    def _load(self) -> None:
        self.base += len(self.lines)
        self.lines, self.i = [], 0
        chunk = self._read()
        if not chunk:
            self.done = True
            return
        if not chunk.endswith("\n"):
            try:
                chunk += self.stream.readline()
            except OSError as err:
                raise ReadError(err.strerror or str(err)) from err
        nul = chunk.find("\x00")
        if nul >= 0:
            self.nul_line = self.base + chunk.count("\n", 0, nul)
            while self._read():  # a decoding error further on still takes precedence
                pass
            self.done = True
            return
        if not self.nonblank and not chunk.isspace():
            self.nonblank = True
        self.quotes = '"' in chunk
        lines = chunk.split("\n")
        if chunk.endswith("\n"):
            lines.pop()
        self.lines = lines


def bad_utf8_lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, message, value) for every line holding bytes that are not UTF-8, read again as bytes
    (line by line); raises ``ReadError`` when the file cannot be read."""
    number = 0
    try:
        with path.open("rb") as stream:
            for raw in stream:
                body = raw[:-1] if raw.endswith(b"\n") else raw
                if raw.endswith(b"\r\n"):
                    body = body[:-1]
                # '\r' and '\n' bytes never occur inside a UTF-8 sequence, so lines can be split as bytes.
                for line in body.split(b"\r"):
                    number += 1
                    bad = _bad_utf8(line)
                    if bad is not None:
                        yield number, *bad
    except OSError as err:
        raise ReadError(err.strerror or str(err)) from err


def _bad_utf8(line: bytes) -> tuple[str, str] | None:
    """The message and the bad bytes (as ``\\xNN``) of a line that is not UTF-8; None for a good one."""
    try:
        line.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    bad: list[str] = []
    pos = 0
    while pos < len(line):
        try:
            line[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as err:
            bad.append("".join(f"\\x{byte:02x}" for byte in line[pos + err.start : pos + err.end]))
            pos += err.end
    shown = line.decode("utf-8", "backslashreplace").lstrip("\ufeff")
    message = (
        f"the text is not valid UTF-8: cannot decode {' '.join(bad)} in {show(shown)}; "
        "save the file with UTF-8 encoding"
    )
    return message, " ".join(bad)
