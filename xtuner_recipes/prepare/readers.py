"""Read raw dataset files as numbered rows: JSON and JSONL (``xtuner_recipes.rows``), and the
tutorial's Medication QA xlsx (sheet ``DrugQA``), a ``Row`` per sheet row.
"""

from collections.abc import Iterator
from pathlib import Path

from xtuner_recipes.rows import Row
from xtuner_recipes.rows import read_rows as json_rows

XLSX_SHEET = "DrugQA"
XLSX_HEADER = ("Question", "Focus (Drug)", "Question Type", "Answer", "Section Title", "URL")


def read_rows(path: Path) -> Iterator[Row]:
    """Every row of ``path``: the tutorial's xlsx, or JSON (see ``xtuner_recipes.rows``)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        yield from _xlsx(path)
    else:
        yield from json_rows(path)


def _xlsx(path: Path) -> Iterator[Row]:
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:  # not an xlsx inside: one bad "row"
        yield Row(str(path), error=f"not a readable xlsx workbook ({type(error).__name__}: {error})")
        return
    try:
        if XLSX_SHEET not in workbook.sheetnames:
            yield Row(str(path), error=f"no sheet {XLSX_SHEET!r} (sheets: {', '.join(workbook.sheetnames)})")
            return
        rows = workbook[XLSX_SHEET].iter_rows(values_only=True)
        header = tuple(str(cell).strip() if cell is not None else "" for cell in next(rows, ()))
        missing = [name for name in ("Question", "Answer") if name not in header]
        if missing:
            yield Row(f"{path} row 1", error=f"header lacks {', '.join(missing)} (expected {' | '.join(XLSX_HEADER)})")
            return
        for number, cells in enumerate(rows, start=2):
            if all(cell is None or str(cell).strip() == "" for cell in cells):
                continue
            record = {name: cell for name, cell in zip(header, cells) if name}
            yield Row(f"{path} row {number}", record=record)
    finally:
        workbook.close()
