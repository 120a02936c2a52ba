"""Read JSON data files as numbered rows: JSONL one line at a time, or a JSON array.

One reader for ``validate`` (the data a config trains on) and ``prepare`` (raw files).
The format follows the content: a ``.jsonl`` holding a JSON array (the tutorial's
script writes one) is read as an array. Rows are parsed with ``json``, never evaluated;
a bad row is a ``Row`` with ``error`` set, and reading goes on.

    >>> [row.where for row in read_rows("train.jsonl")]  # doctest: +SKIP
    ['train.jsonl:1', 'train.jsonl:2']
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
    with _open(path) as handle:
        return handle.read(4096).removeprefix(BOM).lstrip().startswith(b"[")


def read_rows(path: str | Path) -> Iterator[Row]:
    """Each row of a JSONL or JSON-array file with where it stands."""
    path = Path(path)
    try:
        yield from (_array(path) if _is_array(path) else _lines(path))
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
            if not isinstance(record, dict):
                yield Row(where, number, error=f"not a JSON object but {type(record).__name__}")
                continue
            if SURROGATE_ESCAPE.search(raw) and (why := _lone_surrogate(record)):
                yield Row(where, number, error=why)
                continue
            yield Row(where, number, record)


def _array(path: Path) -> Iterator[Row]:
    with _open(path) as handle:
        raw = handle.read()
    try:
        items = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        yield Row(str(path), error=f"not UTF-8 (byte {error.start})")
        return
    except json.JSONDecodeError as error:
        yield Row(f"{path}:{error.lineno}", error.lineno, error=f"bad JSON: {error.msg} at column {error.colno}")
        return
    if not isinstance(items, list):
        yield Row(str(path), error="not a JSON array")
        return
    check_surrogates = SURROGATE_ESCAPE.search(raw) is not None
    for number, item in enumerate(items, start=1):
        where = f"{path} item {number}"
        if not isinstance(item, dict):
            yield Row(where, error=f"not a JSON object but {type(item).__name__}")
        elif check_surrogates and (why := _lone_surrogate(item)):
            yield Row(where, error=why)
        else:
            yield Row(where, record=item)


def _lone_surrogate(record: dict) -> str | None:
    """Why the record is no valid Unicode, or None. ``json`` accepts an escaped half of a
    surrogate pair (``"\\ud800"``); the datasets library's JSON reader rejects the whole file."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"a lone surrogate escape (\\u{ord(error.object[error.start]):04x}) is no character: "
                "the datasets library fails on the whole file")
    return None
