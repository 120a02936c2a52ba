"""Read a dataset's files and run its map function over every row.

Rows are parsed with ``json``, never evaluated. Each failure is kept with its
file and line; the first few become findings, all are counted.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xtuner_recipes.paths import is_spreadsheet
from xtuner_recipes.rows import read_rows
from xtuner_recipes.validate.data.columns import survey, with_columns
from xtuner_recipes.findings import Finding

LISTED = 5  # failures shown one by one; the rest are counted


@dataclass
class DataScan:
    files: list[str] = field(default_factory=list)
    rows: int = 0
    usable: int = 0  # rows that map to a conversation
    sampled_rows: int | None = None  # with --sample: the rows mapped; `rows` counts them all
    findings: list[Finding] = field(default_factory=list)


CHUNK = 1000  # conversations handed to ``sink`` at a time


def scan(files: list[str], map_fn: Callable | None, *, sample: int | None, key: str = "data_path",
         progress: Callable[[str, int, int | None], None] | None = None,
         sink: Callable[[list], None] | None = None) -> DataScan:
    """Read ``files``, map each row (the first ``sample`` only, counting the rest), and report
    what fails; ``progress(what, done, total)``. The mapped conversations go to ``sink`` a chunk
    at a time and are not kept: memory stays flat whatever the data's size."""
    result = DataScan(files=files)
    missing = [f for f in files if not Path(f).expanduser().exists()]
    for path in missing:
        result.findings.append(Finding("D001", "error", f"data file {path} does not exist", key=key))
    special = [f for f in files if f not in missing and not Path(f).expanduser().is_file()]
    for path in special:  # a FIFO would block the read forever; datasets reads files
        if Path(path).expanduser().is_dir():  # datasets: FileNotFoundError "Unable to find" (test_failure_proofs)
            result.findings.append(Finding("D010", "error", f"data file {path} is a folder: the datasets library "
                                           "takes files in data_files and fails (FileNotFoundError)", key=key,
                                           hint=f"name the files ('{path}/*.jsonl'), or load the folder with "
                                                "data_dir= (what `set --data FOLDER` writes)"))
        else:
            result.findings.append(Finding("D010", "warning", f"data path {path} is not a regular file (a FIFO or a "
                                           "device): not read", key=key))
    missing += special
    for path in files:
        if path not in missing and is_spreadsheet(path):  # read as JSON, every row would be "not UTF-8"
            result.findings.append(Finding(
                "D002", "error", f"data file {path} is a spreadsheet: the datasets library reads JSON here and fails "
                "on it", key=key, hint=f"convert it: xtuner-recipes prepare medqa {path} -o medqa (the tutorial's "
                "MedQA2019 sheet), then xtuner-recipes set CONFIG --data medqa/train.jsonl --in-place"))
            missing.append(path)
    bad_rows, failed, empty, chunk = _Kept(), _Kept(), 0, []
    readable = [f for f in files if f not in missing]
    # One read for the columns datasets would make (with --sample, of the rows checked: a quick look)
    keys, mixed = survey(readable, limit=sample)
    keys = keys if map_fn is not None else []
    for name, where in mixed.items():
        result.findings.append(Finding(
            "D011", "error", f"field {name!r} is text in some rows ({', '.join(where['text'])}) and a number in others "
            f"({', '.join(where['other'])}): datasets 3.2 (xtuner's pin) cannot build one column of both and the "
            "dataset build fails (ArrowInvalid)", key=key, hint=f"write every {name!r} as text (quoted), or every one "
            "as a number"))
    rows = (r for f in readable for r in read_rows(Path(f).expanduser()))
    for index, row in enumerate(rows, start=1):
        result.rows += 1
        if progress is not None and result.rows % 500 == 0:
            progress("rows read", result.rows, None)
        if sample is not None and index > sample:
            result.sampled_rows = sample
            continue  # counted, not mapped: the schedule is extrapolated from the sample
        if row.error:
            bad_rows.append((row, index, row.error))
            continue
        try:
            mapped = map_fn(with_columns(row.record, keys)) if map_fn is not None else row.record
            conversation = mapped.get("conversation") if isinstance(mapped, dict) else None
        except Exception as error:  # noqa: BLE001 - the config's own map function failing on user data
            failed.append((row, index, f"{type(error).__name__}: {error}"))
            continue
        if not conversation:
            empty += 1
            continue
        result.usable += 1
        if sink is not None:
            chunk.append(conversation)
            if len(chunk) >= CHUNK:
                sink(chunk)
                chunk = []
    if chunk and sink is not None:
        sink(chunk)
    checked = result.sampled_rows or result.rows
    for code, label, rows in (("D002", "cannot be read", bad_rows), ("D003", "fails the map function", failed)):
        for row, index, reason in rows[:LISTED]:
            result.findings.append(Finding(code, "error", f"{row.where} {label}: {reason}", key=key,
                                           line=row.line, hint=_hint(code, row)))
        if rows.total > LISTED:
            result.findings.append(Finding(code, "error", f"{rows.total - LISTED} more rows {label} "
                                           f"({rows.total} of {checked} in all)", key=key))
    if empty:
        result.findings.append(Finding("D004", "warning", f"{empty} of {checked} rows map to an empty "
                                       "conversation and will be dropped", key=key))
    if not result.usable and (checked or not missing):
        result.findings.append(Finding("D005", "error", "no usable data rows: training would have nothing to learn",
                                       key=key))
    if progress is not None:
        progress("rows read", result.rows, result.rows)
    return result


class _Kept(list):
    """The first ``LISTED`` failures, and how many there were (a bad file can fail on every row)."""

    total = 0

    def append(self, item) -> None:
        self.total += 1
        if len(self) < LISTED:
            super().append(item)


def _hint(code: str, row) -> str | None:
    """For a row the map function fails on: what the row looks like, and the map function that fits it."""
    if code != "D003" or row.record is None:
        return None
    from xtuner_recipes.validate.data.formats import suggest

    return suggest(row.record)
