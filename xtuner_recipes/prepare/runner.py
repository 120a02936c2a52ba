"""``prepare``: raw files in, ``train.jsonl`` / ``test.jsonl`` / ``manifest.json`` out, or nothing.

Two passes over a temporary file in OUTDIR: the first converts and checks every row and
keeps each record's 64-bit id (8 bytes a record, whatever the records' size); between them,
duplicates are found by sorting the ids and each kept record gets its 8-byte split key; the
second pass routes the converted lines to their split. Nothing is
published until every row has been read, and nothing at all when a row is bad and
``skip_bad`` is off.
"""

import dataclasses
import hashlib
from array import array
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from xtuner_recipes import __version__
from xtuner_recipes.errors import RecipeError
from xtuner_recipes.fileio import publish, refuse_existing, write_atomic
from xtuner_recipes.map_fns.errors import MapFnError
from xtuner_recipes.prepare.convert import CONVERTERS
from xtuner_recipes.prepare.readers import read_rows
from xtuner_recipes.prepare.split import first_occurrences, record_id, split_key, test_cutoff

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

    @property
    def ok(self) -> bool:
        return bool(self.outputs)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["bad"] = [{"where": where, "reason": reason} for where, reason in self.bad]
        return {**data, "ok": self.ok}


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
    names = ["train.jsonl", "test.jsonl", "manifest.json"]  # an old test.jsonl is replaced or removed
    for name in names:
        refuse_existing(Path(outdir) / name, force=force)


def prepare(task: str, inputs: list[str | Path], outdir: str | Path, *, test_ratio: float = 0.0, seed: int = 0,
            skip_bad: bool = False, force: bool = False,
            progress: Callable[[int, int, int], None] | None = None) -> PrepareResult:
    """Convert ``inputs`` for ``task`` into OUTDIR; see the module docstring for the guarantees."""
    inputs = [Path(p) for p in inputs]
    _check_args(task, inputs, outdir, test_ratio, force)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    convert = CONVERTERS[task]
    result = PrepareResult(task, str(outdir), [_file_facts(p) for p in inputs], skip_bad=skip_bad)
    total_bytes = sum(item["bytes"] for item in result.inputs)
    # Bookkeeping is two arrays of 8 bytes a row (the id's 64 bits; later the split key of each kept
    # row), not a set of strings: 600,000 rows cost ~10 MB, not ~100 MB.
    hashes, done_bytes = array("Q"), 0
    fd, converted = tempfile.mkstemp(prefix=".prepare-", suffix=".tmp", dir=outdir)
    temporaries = [Path(converted)]
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
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
                        continue
                    identifier = record_id(task, conversation)
                    hashes.append(int(identifier.rsplit("-", 1)[1], 16))
                    out.write(json.dumps({"id": identifier, "conversation": conversation}, ensure_ascii=False) + "\n")
                done_bytes += facts["bytes"]
        if progress:
            progress(result.rows_in, done_bytes, total_bytes)
        if (result.bad and not skip_bad) or not hashes:
            return result
        keep = first_occurrences(hashes)
        result.duplicates = len(hashes) - sum(keep)
        keys = array("Q", (split_key(seed, f"{task}-{value:016x}") for value, kept in zip(hashes, keep) if kept))
        del hashes
        cutoff = test_cutoff(keys, test_ratio)
        splits = {"train": outdir / "train.jsonl"} | ({"test": outdir / "test.jsonl"} if test_ratio > 0 else {})
        handles, parts = {}, {}
        for name in splits:
            part_fd, part = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=outdir)
            temporaries.append(Path(part))
            parts[name] = Path(part)
            handles[name] = os.fdopen(part_fd, "w", encoding="utf-8", newline="\n")
        result.written = {name: 0 for name in splits}
        with open(converted, encoding="utf-8") as lines:
            kept_lines = (line for line, kept in zip(lines, keep) if kept)
            for key, line in zip(keys, kept_lines):
                name = "test" if key <= cutoff else "train"
                handles[name].write(line)
                result.written[name] += 1
        for handle in handles.values():
            handle.close()
        # The manifest goes first and comes back last: a folder with a manifest is a complete output,
        # and a run killed in between leaves none. A test.jsonl this run doesn't write would leak
        # its rows (now in train.jsonl) into evaluation: it goes too.
        (outdir / "manifest.json").unlink(missing_ok=True)
        if "test" not in splits:
            (outdir / "test.jsonl").unlink(missing_ok=True)
        for name, target in splits.items():
            publish(parts[name], target, force=force)
            result.outputs.append(str(target))
        manifest = {
            "tool": "xtuner-recipes", "version": __version__, "task": task, "inputs": result.inputs,
            "rows_in": result.rows_in, "written": result.written, "duplicates": result.duplicates,
            "bad_rows": len(result.bad), "skip_bad": skip_bad, "seed": seed, "test_ratio": test_ratio, "rule": RULE,
        }
        write_atomic(outdir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", force=force)
        result.outputs.append(str(outdir / "manifest.json"))
        return result
    finally:
        for path in temporaries:
            path.unlink(missing_ok=True)
