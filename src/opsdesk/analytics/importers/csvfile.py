"""CSV input rows, precisely: what a standards-conforming reader splits, every one counted.

An **input row** is a record of the file as RFC 4180 splits it (delimiter ``,``, quote
``"``, a quote inside a quoted value doubled), after the header record; blank lines are
no records. A quoted value may span lines. A record that cannot be read that way (a
quote that never closes, a closing quote followed by text, a wrong number of fields, bytes
that are not UTF-8) is one **malformed** input row, reported under the physical line it began on. A
quote that opened on line N and does not close properly (nor leaves a record of the
header's width) is *not* allowed to swallow the lines after it: line N is the malformed
row and reading resumes on line N + 1, so those lines are read (and counted) as what
they are.

Two ways to read, one result:

- **fast**: DuckDB's parallel CSV reader with the dialect fixed (no sniffing), strict, and
  failing on any error. It is trusted only when it returns exactly one record per
  physical line (counted here, see :func:`scan`): then no record spans lines and none
  was merged or dropped;
- **careful**: otherwise (any reader error, a mismatch of the counts, quoted values that
  span lines) the file is split by Python's ``csv`` module, line by line with the
  resynchronisation above, into a clean scratch CSV of the good records (read by
  DuckDB, which must then return exactly that many) plus the list of malformed lines
  with the line where each began.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from opsdesk.analytics.importers.mapping import ImportRefused

_CHUNK: Final = 1 << 22  # bytes per read while counting lines
_SHOWN: Final = 1000  # characters of an over-long line kept in the rejects file
#: a quoted value still open after this many bytes is taken for an unclosed quote
MAX_RECORD_BYTES: Final = 1 << 20
_SURROGATE: Final = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8


@dataclass(frozen=True)
class Malformed:
    """A physical line that is no readable record: it is one rejected input row."""

    line: int  # 1-based physical line number in the file (the header is line 1)
    problem: str
    text: str  # the raw line, undecodable bytes shown as U+FFFD


@dataclass(frozen=True)
class LineScan:
    lines: int  # physical lines after the header line
    lone_cr: bool  # a carriage return not followed by a line feed (old Mac line ends)
    utf8: bool  # the whole file is UTF-8 (DuckDB checks only the columns it reads)


def read_header(path: Path) -> list[str]:
    """The header record's column names; refuse a missing, blank or repeated name."""
    with path.open("rb") as fh:
        first = fh.readline(MAX_RECORD_BYTES + 1)
    if len(first) > MAX_RECORD_BYTES:
        raise ImportRefused(
            f"the header line of {path.name} is longer than {MAX_RECORD_BYTES // 1024} KiB; "
            "is it a CSV file with a header line?"
        )
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            f"the header line of {path.name} is not UTF-8 text; save the file as UTF-8"
        ) from exc
    try:
        names = next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        raise ImportRefused(f"cannot read the header line of {path.name}: {exc}") from exc
    if not names or all(not n.strip() for n in names):
        raise ImportRefused(f"{path.name} has no header line; the first line must name the columns")
    other = next((sep for sep in (";", "\t", "|") if len(names) == 1 and sep in names[0]), None)
    if other is not None:
        raise ImportRefused(
            f"{path.name} looks separated by {other!r}, not by commas (its header is one "
            f"column, {names[0]!r}); save it as comma-separated CSV"
        )
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise ImportRefused(
                f"the header of {path.name} has an empty column name (column "
                f"{names.index(name) + 1}); name every column"
            )
        if name in seen:
            raise ImportRefused(
                f"the header of {path.name} names column {name!r} twice; rename one of them"
            )
        seen.add(name)
    return names


def scan(path: Path) -> LineScan:
    """Count the physical lines after the header and check the whole file is UTF-8 (C-speed
    byte counts and decoding, one read)."""
    newlines = 0
    carriage = crlf = 0
    last = b""
    utf8 = True
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            chunk = buf if n == len(buf) else view[:n]
            newlines += buf.count(b"\n", 0, n)
            if buf.find(b"\r", 0, n) >= 0:  # rare: only then count the line ends exactly
                carriage += buf.count(b"\r", 0, n)
                crlf += buf.count(b"\r\n", 0, n)
                if buf[0:1] == b"\n" and last == b"\r":
                    crlf += 1
            if utf8 and not (chunk.isascii() if isinstance(chunk, bytearray) else False):
                try:  # a character split between reads is completed by the next one
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            last = bytes(buf[n - 1 : n])
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    lines = newlines + (1 if last and last != b"\n" else 0)
    return LineScan(lines=max(lines - 1, 0), lone_cr=carriage != crlf, utf8=utf8)


class _Lines:
    """Physical lines of a file as text for ``csv.reader``, remembering the ones the
    current record has taken so they can be given back (resynchronisation)."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self._next_line = 1
        self._replay: deque[tuple[int, str]] = deque()
        self.taken: list[tuple[int, str]] = []
        self.taken_bytes = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._replay:
            number, text = self._replay.popleft()
        else:
            raw = self._fh.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                raise StopIteration
            number = self._next_line
            self._next_line += 1
            if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                # never held whole: the rest of the line is skipped, a bounded read at a time
                while (rest := self._fh.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                raise _TooLong(number, raw[:_SHOWN].decode("utf-8", "replace"))
            # undecodable bytes survive as lone surrogates: the record is then refused
            text = raw.decode("utf-8", errors="surrogateescape")
            if number == 1 and text.startswith(codecs.BOM_UTF8.decode("utf-8")):
                text = text[1:]
        self.taken.append((number, text))
        self.taken_bytes += len(text)
        if len(self.taken) > 1 and self.taken_bytes > MAX_RECORD_BYTES:
            raise _StillOpen
        return text

    def start_record(self) -> None:
        self.taken.clear()
        self.taken_bytes = 0

    def give_back_after_first(self) -> None:
        """The record that began on ``taken[0]`` is malformed: re-read the lines after it."""
        self._replay.extendleft(reversed(self.taken[1:]))

    def close(self) -> None:
        self._fh.close()


class _StillOpen(Exception):
    """A quoted value has run past MAX_RECORD_BYTES."""


class _TooLong(Exception):
    """A physical line longer than MAX_RECORD_BYTES (already skipped)."""

    def __init__(self, line: int, start: str) -> None:
        super().__init__(line)
        self.line = line
        self.start = start


def _shown(text: str) -> str:
    return text.rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def split(path: Path, columns: list[str], out: Path) -> tuple[int, list[Malformed]]:
    """Split ``path`` record by record (see the module docstring) into ``out``, a clean
    CSV (the header, then each good record, quoted where needed, UTF-8) in input order;
    return (records written, malformed lines).

    Python's csv module does the RFC 4180 splitting; resynchronising after a broken
    quote (give the lines back, resume on the next line) is done here because no CSV
    library offers it: they stop, or silently merge the lines a broken quote swallowed.
    """
    width = len(columns)
    # a quoted value may grow to MAX_RECORD_BYTES before it counts as unclosed (the
    # module's own limit is 128 KiB); the limit is process-wide, so it is only raised
    csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))
    malformed: list[Malformed] = []
    written = 0
    lines = _Lines(path)
    reader = csv.reader(lines, strict=True)
    sink = out.open("w", encoding="utf-8", newline="")
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(columns)
    try:
        lines.start_record()
        next(reader, None)  # the header, already read by read_header
        while True:
            lines.start_record()
            problem = None
            resync = True  # give back the lines after the first: its quote broke the record
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                problem = _quote_problem(lines.taken, str(exc))
                record = None
            except _TooLong as long_line:
                # the line itself is one malformed row; a record it was continuing is
                # another, and the lines between them are read again
                if lines.taken:
                    first_line, first_text = lines.taken[0]
                    malformed.append(
                        Malformed(
                            first_line,
                            "a quote opened on this line runs into a line longer than "
                            f"{MAX_RECORD_BYTES // 1024} KiB (line {long_line.line}); is a "
                            "closing quote missing?",
                            _shown(first_text),
                        )
                    )
                    lines.give_back_after_first()
                malformed.append(
                    Malformed(
                        long_line.line,
                        f"the line is longer than {MAX_RECORD_BYTES // 1024} KiB (the longest "
                        "record read); its start is shown",
                        long_line.start,
                    )
                )
                continue
            except _StillOpen:
                problem = (
                    f"a quote opened on this line is still open {len(lines.taken) - 1} "
                    f"lines later (over {MAX_RECORD_BYTES // 1024} KiB); is a closing quote "
                    "missing?"
                )
                record = None
            if record is not None:
                if not record:
                    continue  # a blank line is no record
                taken = lines.taken
                joined = taken[0][1] if len(taken) == 1 else "".join(t for _, t in taken)
                if len(record) != width and len(lines.taken) > 1:
                    problem = (
                        f"a quoted value opened on this line runs on to line "
                        f"{lines.taken[-1][0]} and leaves {len(record)} fields where the "
                        f"header has {width}; is a closing quote missing?"
                    )
                elif not joined.isascii() and _SURROGATE.search(joined):
                    problem, resync = "not UTF-8 text; save the file as UTF-8", False
                elif len(record) != width:
                    problem = f"{len(record)} fields where the header has {width}"
            if problem is None and record is not None:
                writer.writerow(record)
                written += 1
                continue
            first_line, first_text = lines.taken[0]
            malformed.append(Malformed(first_line, str(problem), _shown(first_text)))
            if resync:
                lines.give_back_after_first()
    finally:
        sink.close()
        lines.close()
    malformed.sort(key=lambda bad: bad.line)  # an over-long line is reported before the
    return written, malformed  # lines it cut off from the record they belonged to


def _quote_problem(taken: list[tuple[int, str]], error: str) -> str:
    """What went wrong with a record the csv module refused, in the user's terms."""
    first, last = taken[0][0], taken[-1][0]
    if "unexpected end of data" in error:
        return (
            f"a quote opened on this line never closes (it would swallow every line to the "
            f"end of the file, line {last}); is a closing quote missing?"
        )
    if last > first:
        return (
            f"a quote opened on this line only closes on line {last}, and is followed "
            f"there by text, not a delimiter ({error}); is a closing quote missing?"
        )
    return f"bad quoting ({error})"
