"""Time our commands against xtuner's, side by side, and write BENCHMARKS.md.

Each comparison runs both sides as child processes, alternating, after one
warm-up round each; per child we read wall time, CPU time (user + system) and
peak RSS from ``os.wait4``. Run from the repository root after the README's install:

    python -m benchmarks [--rounds 7] [--only light heavy scale]

Each side must do the job its label says (exit status and the failure it is timed for are
checked, or the run stops); the xtuner side of data comparisons gets an empty datasets cache
each run. The section appended to BENCHMARKS.md and the raw runs in benchmarks/results/ are
written by this script, whole.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "internlm_chat_7b_qlora_oasst1_e3"


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of a comparison, and what it must do for its timing to count: exit with one of
    ``codes`` and print something matching ``reason`` (the failure it is timed for)."""

    command: list
    codes: tuple = (0,)
    reason: str | None = None
    cold_datasets_cache: bool = False  # a new, empty HF_DATASETS_CACHE for each run


def measure(side: Side, cwd: Path) -> tuple[float, float, float]:
    """(wall s, cpu s, peak MiB) of one run of ``side``; raises when it did not do its job."""
    env = dict(os.environ)
    cache = tempfile.mkdtemp(prefix="hf-cache-") if side.cold_datasets_cache else None
    if cache:
        env["HF_DATASETS_CACHE"] = cache
    try:
        with tempfile.TemporaryFile() as output:  # a file, not a pipe: a chatty child can't block on it
            start = time.perf_counter()
            process = subprocess.Popen(side.command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            output.seek(0)
            text = output.read().decode(errors="replace")
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    code = os.waitstatus_to_exitcode(status)
    if code not in side.codes or (side.reason and not re.search(side.reason, text)):
        raise RuntimeError(f"{' '.join(map(str, side.command))}: exit {code} (wanted {side.codes}"
                           + (f" and output matching {side.reason!r}" if side.reason else "") + f"):\n{text[-1500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def compare(name, ours: Side, theirs: Side, rounds, setup) -> dict:
    """Alternate the two sides; ``setup()`` gives a fresh working directory per run."""
    results = {"ours": [], "theirs": []}
    for round_number in range(rounds + 1):
        for side, command in (("ours", ours), ("theirs", theirs)):
            sample = measure(command, setup())
            if round_number:  # round 0 warms the page cache (not the datasets cache: see Side)
                results[side].append(sample)
    row = {"name": name, "rounds": rounds, "raw": results}
    for side, samples in results.items():
        for index, what in enumerate(("wall", "cpu", "mem")):
            values = [s[index] for s in samples]
            row[f"{side}_{what}"] = (statistics.median(values), min(values), max(values))
    row["ratio"] = row["theirs_wall"][0] / row["ours_wall"][0]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--only", nargs="+", choices=("light", "heavy", "scale"), default=["light", "heavy", "scale"],
                        help="which groups to run (default: all; scale writes ~1 GB and takes minutes)")
    args = parser.parse_args(argv)
    ours = [shutil.which("xtuner-recipes") or sys.executable, *([] if shutil.which("xtuner-recipes") else ["-m", "xtuner_recipes"])]
    xtuner = shutil.which("xtuner")
    work = Path(tempfile.mkdtemp(prefix="xr-bench-"))

    def fresh() -> Path:
        return Path(tempfile.mkdtemp(dir=work))

    shipped = Path(fresh()) / f"{SHIPPED}.py"
    subprocess.run([xtuner, "copy-cfg", SHIPPED, str(shipped.parent)], check=True, capture_output=True)
    shipped = next(shipped.parent.glob("*.py"))
    rows, scale = [], []
    if "light" in args.only:
        rows += _light(ours, xtuner, shipped, args.rounds, fresh)
    if "heavy" in args.only or "scale" in args.only:
        rows += _heavy(ours, xtuner, work, min(args.rounds, 3)) if "heavy" in args.only else []
    if "scale" in args.only:
        if not (work / "tiny-model").exists():
            subprocess.run([sys.executable, "-c", "from benchmarks.data import tiny_model; "
                            f"tiny_model(__import__('pathlib').Path({str(work / 'tiny-model')!r}))"],
                           cwd=ROOT, check=True, capture_output=True)
        scale = _scale(ours, work)
    text = "\n\n".join(part for part in (render(rows) if rows else "", render_scale(scale) if scale else "") if part)
    print(text)
    if not args.no_write:
        command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
        write(text, command, {"comparisons": rows, "scale": scale}, args.only)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _light(ours, xtuner, shipped, rounds, fresh) -> list[dict]:
    return [
        compare("`gen medqa` vs `xtuner copy-cfg`", Side([*ours, "gen", "medqa", "--model", "./internlm-chat-7b"]),
                Side([xtuner, "copy-cfg", SHIPPED, "."]), rounds, fresh),
        compare("`set CFG lr=1e-5 max_epochs=1` vs `xtuner copy-cfg`",
                Side([*ours, "set", str(shipped), "lr=1e-5", "max_epochs=1", "-o", "out.py"]),
                Side([xtuner, "copy-cfg", SHIPPED, "."]), rounds, fresh),
        compare("`validate --level static` vs bare `Config.fromfile`",
                Side([*ours, "validate", str(shipped), "--level", "static"]),
                Side([sys.executable, "-c", f"from mmengine.config import Config; Config.fromfile({str(shipped)!r})"]),
                rounds, fresh),
    ]


def copy_cfg_config(xtuner, work: Path, model: Path, data_file: Path) -> Path:
    """xtuner's shipped OASST1 config, copied with `xtuner copy-cfg` and edited the tutorial's way:
    the model and data paths, and a local JSONL loader."""
    folder = work / "copy-cfg"
    folder.mkdir(exist_ok=True)
    subprocess.run([xtuner, "copy-cfg", SHIPPED, str(folder)], check=True, capture_output=True)
    path = next(folder.glob("*.py"))
    text = path.read_text(encoding="utf-8")
    edits = [('"internlm/internlm-chat-7b"', repr(str(model))), ('"timdettmers/openassistant-guanaco"', repr(str(data_file))),
             ("dataset=dict(type=load_dataset, path=data_path)",
              "dataset=dict(type=load_dataset, path='json', data_files=dict(train=data_path))")]
    for old, new in edits:
        if old not in text:
            raise RuntimeError(f"{path}: the copy-cfg config no longer has {old!r}")
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def _heavy(ours, xtuner, work, rounds) -> list[dict]:
    """Data-sized comparisons: each side takes seconds, so fewer rounds."""
    from benchmarks import data

    print("building the tiny model and the data…", file=sys.stderr, flush=True)
    # In a child: a parent that imported torch would pass its memory high-water mark on to every
    # child it starts (Linux keeps ru_maxrss across fork and exec) and inflate every peak below.
    model = work / "tiny-model"
    subprocess.run([sys.executable, "-c", f"from benchmarks.data import tiny_model; tiny_model(__import__('pathlib').Path({str(model)!r}))"],
                   cwd=ROOT, check=True, capture_output=True)
    oasst1 = data.write_jsonl(work / "oasst1.jsonl", data.oasst1_rows())
    bad = data.write_jsonl(work / "oasst1-bad.jsonl", data.oasst1_rows(200, broken_every=10))
    msagent = data.write_jsonl(work / "msagent-100k.jsonl", data.msagent_rows())
    same = lambda: work  # noqa: E731 - these commands write nothing in their folder
    configs = {}
    for name, path, sets in (("good", oasst1, ["max_length=2048"]), ("bad", bad, ["pack_to_max_length=False"])):
        out = work / f"oasst1_{name}.py"
        subprocess.run([*ours, "gen", "oasst1", "--model", str(model), "--data", str(path), "-o", str(out),
                        *[x for s in sets for x in ("--set", s)]], check=True, capture_output=True)
        configs[name] = out
    configs["bad-copy-cfg"] = copy_cfg_config(xtuner, work, model, bad)
    plans = {}
    for name in ("bad", "bad-copy-cfg"):  # smoke's CPU adaptations, so that xtuner's train script gets to the data
        plans[name] = work / f"plan-{name}.json"
        plans[name].write_text(json.dumps({"config": str(configs[name]), "model_from": str(model), "model": str(model),
                                           "steps": 2, "device": "cpu", "work_dir": str(work / f"train-{name}")}))
    fresh = lambda: Path(tempfile.mkdtemp(dir=work))  # noqa: E731 - prepare writes ./out in a new folder each run
    side = str(ROOT / "benchmarks" / "xtuner_side.py")
    # (?m): the number is the side's last line; warnings from imports come before it
    found_bad_rows = Side([*ours, "validate", "--format", "json"], codes=(1,), reason=r'"code": "D003"')
    # The rows without `text`, in the map function: ours for a gen config; xtuner's oasst1_map_fn for the
    # copy-cfg one, which gets None there (datasets fills a key other rows have) and calls .strip() on it.
    gen_fails, copy_cfg_fails = r"GuanacoFormatError", r"AttributeError: 'NoneType' object has no attribute 'strip'"
    return [
        compare("bad data, `gen` config: `validate` (full) vs xtuner's train script (smoke's CPU adaptations), "
                "tiny model, cold datasets cache",
                dataclasses.replace(found_bad_rows, command=[*found_bad_rows.command, str(configs["bad"])]),
                Side([sys.executable, "-m", "xtuner_recipes.smoke.worker", "train", str(plans["bad"])],
                     codes=(1,), reason=gen_fails, cold_datasets_cache=True), rounds, same),
        compare("bad data, `copy-cfg` + edits config: `validate` (full) vs xtuner's train script (smoke's CPU "
                "adaptations), tiny model, cold datasets cache",
                dataclasses.replace(found_bad_rows, command=[*found_bad_rows.command, str(configs["bad-copy-cfg"])]),
                Side([sys.executable, "-m", "xtuner_recipes.smoke.worker", "train", str(plans["bad-copy-cfg"])],
                     codes=(1,), reason=copy_cfg_fails, cold_datasets_cache=True), rounds, same),
        compare("`validate` (full, every row) on 9,846 OASST1 rows vs `process_hf_dataset` (every row, 2 processes, "
                "cold datasets cache), same tokenizer",
                Side([*ours, "validate", str(configs["good"])]),
                Side([sys.executable, side, "process", str(configs["good"])], reason=r"(?m)^\d+\s*$",
                     cold_datasets_cache=True), rounds, same),
        compare("`prepare msagent` on 100,000 rows vs read + `msagent_react_map_fn` in a plain loop",
                Side([*ours, "prepare", "msagent", str(msagent), "-o", "out"]),
                Side([sys.executable, side, "msagent", str(msagent)], reason=r"(?m)^100000\s*$"), rounds, fresh),
    ]


def _scale(ours, work: Path, sizes=(60_000, 600_000)) -> list[dict]:
    """One run each (minutes at 600k rows): wall time and peak RSS at two sizes, every row checked."""
    from benchmarks import data

    model = work / "tiny-model"
    rows = []
    for size in sizes:
        print(f"writing {size} MS-Agent rows…", file=sys.stderr, flush=True)
        jsonl = data.write_jsonl(work / f"msagent-{size}.jsonl", data.msagent_rows(size))
        config = work / f"msagent_{size}.py"
        subprocess.run([*ours, "gen", "msagent", "--model", str(model), "--data", str(jsonl), "-o", str(config)],
                       check=True, capture_output=True)
        checked = rf'"rows": {size},'
        runs = [(f"`validate` (full) on {size:,} MS-Agent rows (JSONL, {jsonl.stat().st_size / 2**20:.0f} MiB)",
                 Side([*ours, "validate", "--format", "json", str(config)], reason=checked)),
                (f"`prepare msagent` on {size:,} rows", Side([*ours, "prepare", "msagent", str(jsonl), "-o", "out"],
                                                            reason=rf"{size} rows in"))]
        if size == sizes[0]:  # the same rows as one JSON array, parsed as they are read
            array = work / f"msagent-{size}.json"
            with open(jsonl, encoding="utf-8") as lines, open(array, "w", encoding="utf-8") as out:
                out.write("[\n" + ",\n".join(line.rstrip("\n") for line in lines) + "\n]\n")
            array_config = work / f"msagent_{size}_array.py"
            subprocess.run([*ours, "gen", "msagent", "--model", str(model), "--data", str(array), "-o",
                            str(array_config)], check=True, capture_output=True)
            runs.append((f"`validate` (full) on the same {size:,} rows as one JSON array",
                         Side([*ours, "validate", "--format", "json", str(array_config)], reason=checked)))
        for name, side in runs:
            print(f"  {name}…", file=sys.stderr, flush=True)
            wall, cpu, mem = measure(side, Path(tempfile.mkdtemp(dir=work)))
            rows.append({"name": name, "rows": size, "wall": wall, "cpu": cpu, "mem": mem})
        jsonl.unlink()
    return rows


def render_scale(rows) -> str:
    lines = ["one run each; every row read, mapped and (validate) tokenized", "",
             "| run | wall | CPU | peak RSS |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['wall']:.1f} s | {r['cpu']:.1f} s | {r['mem']:.0f} MiB |" for r in rows]
    return "\n".join(lines)


def fmt(triple, unit):
    median, low, high = triple
    return f"{median:.2f} ({low:.2f}–{high:.2f}) {unit}"


def render(rows) -> str:
    lines = [
        "each row: its rounds per side after one warm-up run of each, alternating; median (min–max)",
        "",
        "| comparison | rounds | ours wall | theirs wall | ratio (wall) | ours CPU | theirs CPU | ours peak | theirs peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['rounds']} | {fmt(r['ours_wall'], 's')} | {fmt(r['theirs_wall'], 's')} | "
            f"{r['ratio']:.1f}× | {fmt(r['ours_cpu'], 's')} | {fmt(r['theirs_cpu'], 's')} | {r['ours_mem'][0]:.0f} MiB | "
            f"{r['theirs_mem'][0]:.0f} MiB |"
        )
    return "\n".join(lines)


def machine() -> str:
    versions = {name: _version(name) for name in ("xtuner", "torch", "mmengine", "datasets")}
    return (f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()))


def write(text: str, command: str, results: dict, groups: list[str]) -> Path:
    """Append the section to BENCHMARKS.md and write every run's raw figures, whole, to benchmarks/results/
    (a new file for each run: the date, the groups, and a number when the day has one already)."""
    today = datetime.date.today().isoformat()
    stem = ROOT / "benchmarks" / "results" / f"{today}-cpu-{'-'.join(groups)}"
    raw, number = stem.with_suffix(".json"), 1
    while raw.exists():
        number += 1
        raw = stem.with_name(f"{stem.name}-{number}.json")
    raw.write_text(json.dumps({"date": today, "machine": machine(), "command": command, **results}, indent=1) + "\n")
    section = (f"\n## {today}\n\nmachine: {machine()}\n\ncommand: `{command}` (raw runs: "
               f"`{raw.relative_to(ROOT)}`)\n\n{text}\n")
    path = ROOT / "BENCHMARKS.md"
    head = "# Benchmarks\n\nMeasured with `python -m benchmarks`, newest last.\n"
    path.write_text((path.read_text() if path.exists() else head) + section)
    return raw


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
