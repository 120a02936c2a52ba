"""Read a config's training data the way its loader would, and run its map function over every row.

Rows are parsed with ``json``, never evaluated. Each failure is kept with its
file and line; the first few become findings, all are counted.
"""

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xtuner_recipes.paths import looks_local
from xtuner_recipes.rows import read_rows
from xtuner_recipes.validate.findings import Finding

LISTED = 5  # failures shown one by one; the rest are counted


@dataclass
class DataScan:
    files: list[str] = field(default_factory=list)
    rows: int = 0
    usable: list[dict] = field(default_factory=list)  # mapped conversations
    findings: list[Finding] = field(default_factory=list)


def data_files(dataset: dict) -> tuple[list[str] | None, str | None]:
    """The local files a ``load_dataset`` dict reads, or (None, why not)."""
    files = dataset.get("data_files")
    if files is not None:
        patterns = []
        for value in (files.values() if isinstance(files, dict) else [files]):
            patterns += value if isinstance(value, list | tuple) else [value]
        found = []
        for pattern in patterns:
            found += sorted(glob.glob(str(pattern))) or [str(pattern)]
        return found, None
    folder = dataset.get("data_dir") or dataset.get("path")
    if dataset.get("dataset_name") is not None:
        return None, f"loads {dataset.get('dataset_name')} from the ModelScope hub"
    if not isinstance(folder, str):
        return None, "the dataset loader reads no path we can see"
    if Path(folder).is_file():
        return [folder], None
    if Path(folder).is_dir():
        names = sorted(str(p) for p in Path(folder).iterdir() if p.suffix in (".json", ".jsonl"))
        train = [n for n in names if "train" in Path(n).name]
        return train or names, None
    if looks_local(folder) or dataset.get("data_dir"):
        return [folder], None  # a local path that is missing: reported as D001
    return None, f"loads {folder!r} from the Hugging Face hub"


def scan(files: list[str], map_fn: Callable | None, *, sample: int | None,
         progress: Callable[[str, int, int | None], None] | None = None) -> DataScan:
    """Read ``files``, map each row, and report what fails; ``progress(what, done, total)``."""
    result = DataScan(files=files)
    missing = [f for f in files if not Path(f).exists()]
    for path in missing:
        result.findings.append(Finding("D001", "error", f"data file {path} does not exist", key="data_path"))
    bad_rows, failed, empty = [], [], 0
    for index, row in enumerate((r for f in files if f not in missing for r in read_rows(f)), start=1):
        if sample is not None and index > sample:
            break
        result.rows += 1
        if progress is not None and result.rows % 500 == 0:
            progress("rows read", result.rows, sample)
        if row.error:
            bad_rows.append((row, index, row.error))
            continue
        try:
            mapped = map_fn(row.record) if map_fn is not None else row.record
            conversation = mapped.get("conversation") if isinstance(mapped, dict) else None
        except Exception as error:  # noqa: BLE001 - the config's own map function failing on user data
            failed.append((row, index, f"{type(error).__name__}: {error}"))
            continue
        if not conversation:
            empty += 1
        else:
            result.usable.append({"conversation": conversation})
    for code, label, rows in (("D002", "cannot be read", bad_rows), ("D003", "fails the map function", failed)):
        for row, index, reason in rows[:LISTED]:
            result.findings.append(Finding(code, "error", f"{row.where} {label}: {reason}", key="data_path",
                                           line=row.line))
        if len(rows) > LISTED:
            result.findings.append(Finding(code, "error", f"{len(rows) - LISTED} more rows {label} "
                                           f"({len(rows)} of {result.rows} in all)", key="data_path"))
    if empty:
        result.findings.append(Finding("D004", "warning", f"{empty} of {result.rows} rows map to an empty "
                                       "conversation and will be dropped", key="data_path"))
    if not result.usable and (result.rows or not missing):
        result.findings.append(Finding("D005", "error", "no usable data rows: training would have nothing to learn",
                                       key="data_path"))
    if progress is not None:
        progress("rows read", result.rows, result.rows)
    return result
