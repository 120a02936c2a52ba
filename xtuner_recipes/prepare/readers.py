"""Read raw dataset files as a stream of numbered rows: JSONL, JSON arrays, the tutorial's xlsx.

Each item is ``(where, record)`` or ``(where, RowError)``: ``where`` is the file and line (or
array item, or sheet row). Data is parsed, never evaluated. JSONL is read one line at a time,
so memory stays flat whatever the file's size.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

XLSX_SHEET = "DrugQA"
XLSX_HEADER = ("Question", "Focus (Drug)", "Question Type", "Answer", "Section Title", "URL")


@dataclass(frozen=True)
class RowError:
    reason: str


def _first_char(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1].decode("ascii", errors="replace")


def read_rows(path: Path) -> Iterator[tuple[str, object]]:
    """Every row of ``path`` with its place; the format follows the content, not the name."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        yield from _xlsx(path)
    elif _first_char(path) == "[":  # a JSON array, even under a .jsonl name (the tutorial's script)
        yield from _json_array(path)
    else:
        yield from _jsonl(path)


def _jsonl(path: Path) -> Iterator[tuple[str, object]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield where, RowError(f"not UTF-8 (byte {error.start}: {raw[error.start:error.start + 1]!r})")
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                yield where, RowError(f"bad JSON: {error.msg} at column {error.colno}")
                continue
            if not isinstance(record, dict):
                yield where, RowError(f"not a JSON object but {type(record).__name__}")
                continue
            yield where, record


def _json_array(path: Path) -> Iterator[tuple[str, object]]:
    try:
        items = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        yield str(path), RowError(f"not UTF-8 (byte {error.start})")
        return
    except json.JSONDecodeError as error:
        yield f"{path}:{error.lineno}", RowError(f"bad JSON: {error.msg} at column {error.colno}")
        return
    if not isinstance(items, list):
        yield str(path), RowError("not a JSON array")
        return
    for number, item in enumerate(items, start=1):
        where = f"{path} item {number}"
        yield (where, item) if isinstance(item, dict) else (where, RowError(f"not an object but {type(item).__name__}"))


def _xlsx(path: Path) -> Iterator[tuple[str, object]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if XLSX_SHEET not in workbook.sheetnames:
            yield str(path), RowError(f"no sheet {XLSX_SHEET!r} (sheets: {', '.join(workbook.sheetnames)})")
            return
        rows = workbook[XLSX_SHEET].iter_rows(values_only=True)
        header = tuple(str(cell).strip() if cell is not None else "" for cell in next(rows, ()))
        missing = [name for name in ("Question", "Answer") if name not in header]
        if missing:
            yield f"{path} row 1", RowError(f"header lacks {', '.join(missing)} (expected {' | '.join(XLSX_HEADER)})")
            return
        for number, cells in enumerate(rows, start=2):
            if all(cell is None or str(cell).strip() == "" for cell in cells):
                continue
            record = {name: cell for name, cell in zip(header, cells) if name}
            yield f"{path} row {number}", record
    finally:
        workbook.close()
