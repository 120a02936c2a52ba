"""``prepare``: raw files in, ``train.jsonl`` / ``test.jsonl`` / ``manifest.json`` out, or nothing.

Everything is written into a new folder beside OUTDIR, which takes OUTDIR's place in one step
(so OUTDIR holds only prepare's outputs). Two passes over a temporary file there: the first converts and checks every row and
keeps each record's 64-bit id (8 bytes a record, whatever the records' size); between them,
duplicates are found by sorting the ids and each kept record gets its 8-byte split key; the
second pass routes the converted lines to their split. Nothing is
published until every row has been read, and nothing at all when a row is bad and
``skip_bad`` is off.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from array import array
from collections.abc import Callable
from pathlib import Path

from xtuner_recipes import __version__
from xtuner_recipes.data_profile import SAMPLED, profile
from xtuner_recipes.errors import OutputExistsError, RecipeError
from xtuner_recipes.fileio import clean_stale, refuse_existing, stage_name, swap_folder
from xtuner_recipes.map_fns.errors import MapFnError
from xtuner_recipes.prepare.convert import CONVERTERS
from xtuner_recipes.prepare.readers import read_rows
from xtuner_recipes.prepare.split import first_occurrences, record_id, split_key, test_cutoff

OUTPUTS = ("train.jsonl", "test.jsonl", "manifest.json")
OLD_TEMPORARY = re.compile(r"^\.(prepare|train|test)-.*\.tmp$")  # left inside OUTDIR by earlier versions of prepare
RULE = ("id = task + first 16 hex of sha256(canonical JSON of the conversation); duplicates kept once; "
        "test = the round(n * test_ratio) ids with the smallest sha256('<seed>:<id>'); rows keep input order")


@dataclasses.dataclass
class PrepareResult:
    task: str
    outdir: str
    inputs: list[dict]
    rows_in: int = 0
    written: dict = dataclasses.field(default_factory=dict)
    duplicates: int = 0
    bad: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skip_bad: bool = False
    outputs: list[str] = dataclasses.field(default_factory=list)
    looks_like: str | None = None  # every row bad for this task, and they are another task's rows

    @property
    def ok(self) -> bool:
        return bool(self.outputs)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["bad"] = [{"where": where, "reason": reason} for where, reason in self.bad]
        return {**data, "ok": self.ok}


def _other_task(task: str, records: list) -> str | None:
    """The other task whose converter takes every one of ``records`` (the rows this task refused), if one does."""
    for other, convert in CONVERTERS.items():
        if other == task:
            continue
        try:
            if all(convert(record) for record in records):
                return other
        except Exception:  # noqa: BLE001 - a row that other task can't convert either: not its rows
            continue
    return None


def _file_facts(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _check_args(task, inputs, outdir, test_ratio, force) -> None:
    if task not in CONVERTERS:
        raise RecipeError(f"unknown task {task!r}", hint=f"one of {', '.join(CONVERTERS)}")
    if not 0 <= test_ratio < 1:
        raise RecipeError(f"--test-ratio must be in [0, 1), got {test_ratio}")
    folder = Path(outdir).resolve()
    for path in inputs:
        if not Path(path).is_file():
            raise RecipeError(f"input {path} is not a file")
        if Path(path).resolve().parent == folder:
            raise RecipeError(f"input {path} is inside the output folder {outdir}: its outputs could replace it",
                              hint="write to another folder (-o OUTDIR)")
    for name in OUTPUTS:  # an old test.jsonl is replaced or removed
        refuse_existing(Path(outdir) / name, force=force)
    if Path(outdir).is_dir():
        others = sorted(p.name for p in Path(outdir).iterdir() if p.name not in OUTPUTS and not OLD_TEMPORARY.match(p.name))
        if others:
            raise RecipeError(f"{outdir} holds other files ({', '.join(others[:5])}{'…' if len(others) > 5 else ''}): "
                              "prepare replaces the whole folder in one step, and would take them with it",
                              hint="write to a new or empty folder (-o OUTDIR)")
    elif Path(outdir).exists():
        raise RecipeError(f"{outdir} is not a folder", hint="write to a new or empty folder (-o OUTDIR)")


def prepare(task: str, inputs: list[str | Path], outdir: str | Path, *, test_ratio: float = 0.0, seed: int = 0,
            skip_bad: bool = False, force: bool = False,
            progress: Callable[[int, int, int], None] | None = None) -> PrepareResult:
    """Convert ``inputs`` for ``task`` into OUTDIR; see the module docstring for the guarantees."""
    inputs = [Path(p) for p in inputs]
    _check_args(task, inputs, outdir, test_ratio, force)
    outdir = Path(outdir)
    convert = CONVERTERS[task]
    result = PrepareResult(task, str(outdir), [_file_facts(p) for p in inputs], skip_bad=skip_bad)
    total_bytes = sum(item["bytes"] for item in result.inputs)
    parent = outdir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent, outdir.name)  # folders that killed runs of ours left beside OUTDIR
    # Everything is written into a new folder beside OUTDIR, which then takes OUTDIR's place in one
    # step: a reader (or a kill) sees the whole old output or the whole new one, never a mix.
    stage = Path(tempfile.mkdtemp(prefix=stage_name(outdir), dir=parent))
    try:
        os.chmod(stage, _folder_mode(outdir))
        _convert(task, inputs, convert, stage, result, seed, test_ratio, skip_bad, progress, total_bytes)
        if not result.written:
            return result
        if outdir.exists() and not force and any((outdir / name).exists() for name in OUTPUTS):
            raise OutputExistsError(f"{outdir} got outputs while this ran; nothing was replaced",
                                    hint="pass --force to overwrite them")
        swap_folder(stage, outdir)
        result.outputs = [str(outdir / name) for name in OUTPUTS if (outdir / name).exists()]
        return result
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _folder_mode(outdir: Path) -> int:
    """The old folder's mode, else what the umask gives a new folder."""
    try:
        return os.stat(outdir).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o777 & ~mask


def _convert(task, inputs, convert, stage: Path, result: PrepareResult, seed, test_ratio, skip_bad, progress,
             total_bytes) -> None:
    """Write train.jsonl, test.jsonl (with a test ratio) and manifest.json into ``stage``; nothing
    (``result.written`` empty) when a row is bad and ``skip_bad`` is off, or no row is usable."""
    # Bookkeeping is two arrays of 8 bytes a row (the id's 64 bits; later the split key of each kept
    # row), not a set of strings: 600,000 rows cost ~10 MB, not ~100 MB.
    hashes, done_bytes, sample, refused = array("Q"), 0, [], []
    converted = stage / ".converted"
    with open(converted, "w", encoding="utf-8", newline="\n") as out:
        for path, facts in zip(inputs, result.inputs):
            facts["rows"] = facts["bad_rows"] = 0
            for row in read_rows(path):
                facts["rows"] += 1
                result.rows_in += 1
                if progress and result.rows_in % 5000 == 0:
                    progress(result.rows_in, done_bytes, total_bytes)
                try:
                    if row.error:
                        raise MapFnError(row.error)
                    conversation = convert(row.record)
                except (MapFnError, TypeError, AttributeError) as error:
                    facts["bad_rows"] += 1
                    result.bad.append((row.where, str(error) or type(error).__name__))
                    if row.record is not None and len(refused) < SAMPLED:
                        refused.append(row.record)
                    continue
                identifier = record_id(task, conversation)
                hashes.append(int(identifier.rsplit("-", 1)[1], 16))
                if len(sample) < SAMPLED:  # what kind of data this is, for gen (manifest "data")
                    sample.append(conversation)
                out.write(json.dumps({"id": identifier, "conversation": conversation}, ensure_ascii=False) + "\n")
            done_bytes += facts["bytes"]
    if progress:
        progress(result.rows_in, done_bytes, total_bytes)
    if not hashes and refused:
        result.looks_like = _other_task(task, refused)
    if (result.bad and not skip_bad) or not hashes:
        return
    keep = first_occurrences(hashes)
    result.duplicates = len(hashes) - sum(keep)
    keys = array("Q", (split_key(seed, f"{task}-{value:016x}") for value, kept in zip(hashes, keep) if kept))
    del hashes
    cutoff = test_cutoff(keys, test_ratio)
    splits = ["train"] + (["test"] if test_ratio > 0 else [])
    handles = {name: open(stage / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") for name in splits}
    result.written = {name: 0 for name in splits}
    try:
        with open(converted, encoding="utf-8") as lines:
            kept_lines = (line for line, kept in zip(lines, keep) if kept)
            for key, line in zip(keys, kept_lines):
                name = "test" if key <= cutoff else "train"
                handles[name].write(line)
                result.written[name] += 1
    finally:
        for handle in handles.values():
            handle.close()
    converted.unlink()
    manifest = {
        "tool": "xtuner-recipes", "version": __version__, "task": task, "inputs": result.inputs,
        "rows_in": result.rows_in, "written": result.written, "duplicates": result.duplicates,
        "bad_rows": len(result.bad), "skip_bad": skip_bad, "seed": seed, "test_ratio": test_ratio, "rule": RULE,
        "data": profile(sample).as_dict(),
    }
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
