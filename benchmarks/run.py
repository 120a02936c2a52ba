"""Time our commands against xtuner's, side by side, and write BENCHMARKS.md.

Each comparison runs both sides as child processes, alternating, after one
warm-up round each; per child we read wall time, CPU time (user + system) and
peak RSS from ``os.wait4``. Run from the repository root after the README's install:

    python -m benchmarks [--rounds 7]
"""

import argparse
import datetime
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
    rows = [
        compare("`gen medqa` vs `xtuner copy-cfg`", [*ours, "gen", "medqa", "--model", "./internlm-chat-7b"],
                [xtuner, "copy-cfg", SHIPPED, "."], args.rounds, fresh),
        compare("`set CFG lr=1e-5 max_epochs=1` vs `xtuner copy-cfg`",
                [*ours, "set", str(shipped), "lr=1e-5", "max_epochs=1", "-o", "out.py"],
                [xtuner, "copy-cfg", SHIPPED, "."], args.rounds, fresh),
        compare("`validate --level static` vs bare `Config.fromfile`",
                [*ours, "validate", str(shipped), "--level", "static"],
                [sys.executable, "-c", f"from mmengine.config import Config; Config.fromfile({str(shipped)!r})"],
                args.rounds, fresh),
    ]
    table = render(rows, args.rounds)
    print(table)
    if not args.no_write:
        write(table, " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]))
    shutil.rmtree(work, ignore_errors=True)
    return 0


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
