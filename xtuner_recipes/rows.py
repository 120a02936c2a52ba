"""Read JSON data files as numbered rows: JSONL one line at a time, or a JSON array.

One reader for ``validate`` (the data a config trains on) and ``prepare`` (raw files).
The format follows the content: a ``.jsonl`` holding a JSON array (the tutorial's
script writes one) is read as an array. Rows are parsed with ``json``, never evaluated;
a bad row is a ``Row`` with ``error`` set, and reading goes on.

For example ``[row.where for row in read_rows("train.jsonl")]`` is ``['train.jsonl:1', 'train.jsonl:2']``
for a file of two rows.
"""

import bz2
import gzip
import json
import lzma
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BOM = b"\xef\xbb\xbf"
COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # half of a pair; alone it is no character


@dataclass(frozen=True)
class Row:
    where: str  # "file:line", "file item N", "file row N"
    line: int | None = None  # the line in a JSONL file; None elsewhere
    record: dict | None = None
    error: str | None = None


def _open(path: Path):
    """The file's bytes, decompressed the way the datasets library reads ``.gz``/``.bz2``/``.xz``."""
    opener = COMPRESSED.get(path.suffix, open)
    return opener(path, "rb")


def _is_array(path: Path) -> bool:
    """A file that is one JSON array: it starts with ``[``, and is not JSONL whose first row happens to be a
    list (a first line that is whole JSON by itself, with more rows after it)."""
    with _open(path) as handle:
        head = handle.read(65536).removeprefix(BOM).lstrip()
    if not head.startswith(b"["):
        return False
    first, newline, rest = head.partition(b"\n")
    if not newline or not rest.strip():
        return True  # one line (or all of it): an array written on one line
    try:
        json.loads(first.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return True  # "[" opens a pretty-printed array: its first line is not JSON by itself
    return False


def read_rows(path: str | Path, *, chunk: int | None = None) -> Iterator[Row]:
    """Each row of a JSONL or JSON-array file with where it stands (``chunk``: characters a JSON
    array is read ahead, ``CHUNK`` by default)."""
    path = Path(path)
    try:
        yield from (_array(path, chunk or CHUNK) if _is_array(path) else _lines(path))
    except (EOFError, OSError, lzma.LZMAError) as error:  # a truncated or corrupt .gz/.bz2/.xz
        if path.suffix not in COMPRESSED:
            raise
        yield Row(str(path), error=f"cannot be decompressed: {error}")


def _lines(path: Path) -> Iterator[Row]:
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            if number == 1:
                raw = raw.removeprefix(BOM)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield Row(where, number, error=f"not UTF-8 (byte {error.start}: {raw[error.start:error.start + 1]!r})")
                continue
            except json.JSONDecodeError as error:
                yield Row(where, number, error=f"bad JSON: {error.msg} at column {error.colno}")
                continue
            except RecursionError:  # nor can the datasets library (tests/test_failure_proofs.py)
                yield Row(where, number, error="JSON nested deeper than Python's json parser goes")
                continue
            if not isinstance(record, dict):
                yield Row(where, number, error=f"not a JSON object but {type(record).__name__}")
                continue
            if SURROGATE_ESCAPE.search(raw) and (why := _lone_surrogate(record)):
                yield Row(where, number, error=why)
                continue
            yield Row(where, number, record)


CHUNK = 1 << 20  # characters read at a time from a JSON array
SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")


def _array(path: Path, chunk: int) -> Iterator[Row]:
    """A JSON array's items, parsed one at a time as the file is read: memory holds one item
    (and a read-ahead), not the file."""
    import io

    with _open(path) as handle:
        reader = io.TextIOWrapper(handle, encoding="utf-8-sig")
        stream = _ArrayStream(reader, chunk)
        try:
            yield from stream.items(path)
        except UnicodeDecodeError as error:
            yield Row(str(path), error=f"not UTF-8 ({error.reason})")


class _ArrayStream:
    def __init__(self, reader, chunk: int) -> None:
        self.reader, self.buffer, self.position, self.lines_before, self.ended = reader, "", 0, 0, False
        self.chunk = chunk
        self.decoder = json.JSONDecoder()

    def _more(self, at_least: int = 0) -> bool:
        """Read on; False at the end of the file."""
        if self.ended:
            return False
        if self.position > self.chunk:  # drop what has been parsed, keeping the line count
            self.lines_before += self.buffer.count("\n", 0, self.position)
            self.buffer, self.position = self.buffer[self.position:], 0
        text = self.reader.read(max(self.chunk, at_least))
        if not text:
            self.ended = True
            return False
        self.buffer += text
        return True

    def _next_char(self) -> str:
        """The next non-blank character (not consumed), or '' at the end."""
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in " \t\r\n":
                self.position += 1
            if self.position < len(self.buffer) or not self._more():
                return self.buffer[self.position:self.position + 1]

    def _bad(self, path: Path, message: str, at: int | None = None) -> Row:
        line = self.lines_before + self.buffer.count("\n", 0, self.position if at is None else at) + 1
        return Row(f"{path}:{line}", line, error=f"bad JSON: {message}")

    def items(self, path: Path) -> Iterator[Row]:
        if self._next_char() != "[":
            yield Row(str(path), error="not a JSON array")
            return
        self.position += 1
        number, expect_item = 0, True
        while True:
            char = self._next_char()
            if char == "]" and (number == 0 or not expect_item):
                self.position += 1
                if self._next_char():
                    yield self._bad(path, "Extra data after the array")
                return
            if not char:
                yield self._bad(path, "the file ends inside the array")
                return
            if not expect_item:
                if char != ",":
                    yield self._bad(path, "Expecting ',' delimiter")
                    return
                self.position += 1
                expect_item = True
                continue
            item, failure = self._decode()
            if failure is not None:
                yield failure if isinstance(failure, Row) else self._bad(path, failure.msg, failure.pos)
                return
            number += 1
            yield _item_row(path, number, item, self.item_text)
            expect_item = False

    def _decode(self):
        """The next value, reading on while it may be cut off by the read-ahead."""
        need = self.chunk
        while True:
            try:
                item, end = self.decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as error:
                if self._more(need):
                    need *= 2
                    continue
                return None, error
            # A number or word cut by the read-ahead decodes as a shorter one ("0." of "0.5"):
            # accept it only when a delimiter follows it.
            cut = not isinstance(item, dict | list | str) and self.buffer[end:end + 1] not in ",] \t\r\n"
            if (end == len(self.buffer) or cut) and self._more(need):
                continue
            self.item_text = self.buffer[self.position:end]
            self.position = end
            return item, None


def _item_row(path: Path, number: int, item, text: str) -> Row:
    where = f"{path} item {number}"
    if not isinstance(item, dict):
        return Row(where, error=f"not a JSON object but {type(item).__name__}")
    if SURROGATE_TEXT.search(text) and (why := _lone_surrogate(item)) is not None:
        return Row(where, error=why)
    return Row(where, record=item)


def _lone_surrogate(record: dict) -> str | None:
    """Why the record is no valid Unicode, or None. ``json`` accepts an escaped half of a
    surrogate pair (``"\\ud800"``); the datasets library's JSON reader rejects the whole file."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"a lone surrogate escape (\\u{ord(error.object[error.start]):04x}) is no character: "
                "the datasets library fails on the whole file")
    return None
