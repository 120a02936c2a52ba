"""Time our commands against xtuner's, side by side, and write BENCHMARKS.md.

Each comparison runs both sides as child processes, alternating, after one
warm-up round each; per child we read wall time, CPU time (user + system) and
peak RSS from ``os.wait4``. Run from the repository root after the README's install:

    python -m benchmarks [--rounds 7]
"""

import argparse
import datetime
import json
import os
import platform
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


def measure(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, cpu s, peak MiB) of one run of ``command``."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child can't block on it
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {errors.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def compare(name, ours, theirs, rounds, setup) -> dict:
    """Alternate the two sides; ``setup()`` gives a fresh working directory per run."""
    results = {"ours": [], "theirs": []}
    for round_number in range(rounds + 1):
        for side, command in (("ours", ours), ("theirs", theirs)):
            sample = measure(command, setup())
            if round_number:  # round 0 warms caches
                results[side].append(sample)
    row = {"name": name}
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
    args = parser.parse_args(argv)
    ours = [shutil.which("xtuner-recipes") or sys.executable, *([] if shutil.which("xtuner-recipes") else ["-m", "xtuner_recipes"])]
    xtuner = shutil.which("xtuner")
    work = Path(tempfile.mkdtemp(prefix="xr-bench-"))

    def fresh() -> Path:
        return Path(tempfile.mkdtemp(dir=work))

    shipped = Path(fresh()) / f"{SHIPPED}.py"
    subprocess.run([xtuner, "copy-cfg", SHIPPED, str(shipped.parent)], check=True, capture_output=True)
    shipped = next(shipped.parent.glob("*.py"))
    rows = _light(ours, xtuner, shipped, args.rounds, fresh) + _heavy(ours, xtuner, work, min(args.rounds, 3))
    table = render(rows, args.rounds)
    print(table)
    if not args.no_write:
        write(table, " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _light(ours, xtuner, shipped, rounds, fresh) -> list[dict]:
    return [
        compare("`gen medqa` vs `xtuner copy-cfg`", [*ours, "gen", "medqa", "--model", "./internlm-chat-7b"],
                [xtuner, "copy-cfg", SHIPPED, "."], rounds, fresh),
        compare("`set CFG lr=1e-5 max_epochs=1` vs `xtuner copy-cfg`",
                [*ours, "set", str(shipped), "lr=1e-5", "max_epochs=1", "-o", "out.py"],
                [xtuner, "copy-cfg", SHIPPED, "."], rounds, fresh),
        compare("`validate --level static` vs bare `Config.fromfile`",
                [*ours, "validate", str(shipped), "--level", "static"],
                [sys.executable, "-c", f"from mmengine.config import Config; Config.fromfile({str(shipped)!r})"],
                rounds, fresh),
    ]


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
    plan = work / "plan.json"  # smoke's CPU adaptations, so that xtuner's train script gets to the data
    plan.write_text(json.dumps({"config": str(configs["bad"]), "model_from": str(model), "model": str(model),
                                "steps": 2, "device": "cpu", "work_dir": str(work / "train")}))
    fresh = lambda: Path(tempfile.mkdtemp(dir=work))  # noqa: E731 - prepare writes ./out in a new folder each run
    return [
        compare("`validate` (full) on a bad-data config vs xtuner's train script with smoke's CPU adaptations, tiny model",
                [*ours, "validate", str(configs["bad"])],
                [sys.executable, "-m", "xtuner_recipes.smoke.worker", "train", str(plan)], rounds, same),
        compare("`validate` (full) on a bad-data config vs `xtuner train` as shipped (dies on the bf16 probe, exit 0)",
                [*ours, "validate", str(configs["bad"])], [xtuner, "train", str(configs["bad"])], rounds, same),
        compare("`validate` (full, every row) on 9,846 OASST1 rows vs `xtuner check-custom-dataset` (10 rows)",
                [*ours, "validate", str(configs["good"])], [xtuner, "check-custom-dataset", str(configs["good"])],
                rounds, same),
        compare("`validate` (full, every row) on 9,846 OASST1 rows vs `process_hf_dataset` (every row, 2 processes)",
                [*ours, "validate", str(configs["good"])],
                [sys.executable, str(ROOT / "benchmarks" / "xtuner_side.py"), "process", str(configs["good"])],
                rounds, same),
        compare("`prepare msagent` on 100,000 rows vs read + `msagent_react_map_fn` in a plain loop",
                [*ours, "prepare", "msagent", str(msagent), "-o", "out"],
                [sys.executable, str(ROOT / "benchmarks" / "xtuner_side.py"), "msagent", str(msagent)], rounds, fresh),
    ]


def fmt(triple, unit):
    median, low, high = triple
    return f"{median:.2f} ({low:.2f}–{high:.2f}) {unit}"


def render(rows, rounds) -> str:
    lines = [
        f"rounds: {rounds} per side after one warm-up, alternating; median (min–max)",
        "",
        "| comparison | ours wall | theirs wall | ratio (wall) | ours CPU | theirs CPU | ours peak | theirs peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {fmt(r['ours_wall'], 's')} | {fmt(r['theirs_wall'], 's')} | {r['ratio']:.1f}× | "
            f"{fmt(r['ours_cpu'], 's')} | {fmt(r['theirs_cpu'], 's')} | {r['ours_mem'][0]:.0f} MiB | {r['theirs_mem'][0]:.0f} MiB |"
        )
    return "\n".join(lines)


def write(table: str, command: str) -> None:
    versions = {name: _version(name) for name in ("xtuner", "torch", "mmengine")}
    machine = (f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
               f"Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    section = (f"\n## {datetime.date.today().isoformat()}\n\nmachine: {machine}\n\ncommand: `{command}`\n\n"
               f"{table}\n")
    path = ROOT / "BENCHMARKS.md"
    head = "# Benchmarks\n\nMeasured with `python -m benchmarks`, newest last.\n"
    path.write_text((path.read_text() if path.exists() else head) + section)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
