"""Peak host memory (RSS) of xtuner's export steps on the 7B-shaped model, against `validate`'s estimate (#17).

    python benchmarks/gpu/h200_host.py --estimate-only --out benchmarks/results   # here, committed first
    python benchmarks/gpu/h200_host.py --out $OUT --config CFG --checkpoint WORK_DIR/iter_N.pth   # on the H200

Each step runs as xtuner's own tool in a child process (`pth_to_hf CFG PTH ADAPTER`, then
`merge MODEL ADAPTER MERGED`, its default `--device cuda`); the peak is the child's
`ru_maxrss`. The estimate is `xtuner_recipes.validate.estimate.host.peaks` for the same model.
"""

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_memory as mem  # noqa: E402


def estimate() -> dict:
    from xtuner_recipes.model_info import read_config
    from xtuner_recipes.validate.estimate.host import largest_shard, peaks
    from xtuner_recipes.validate.estimate.count import arch_of

    shard, measured = largest_shard(str(mem.MODEL))
    return {"shard_gib": round(shard / 1024 ** 3, 3), "shard_measured": measured,
            **peaks(arch_of(read_config(str(mem.MODEL)))[0], "nf4", shard_bytes=shard)}


def peak_rss(command: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``command`` in a fresh wrapper process; its exit status, the child's peak RSS in GiB, seconds."""
    wrapper = ("import resource, subprocess, sys; status = subprocess.run(sys.argv[1:]).returncode; "
               "print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.time()
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, "-c", wrapper, *command], stdout=subprocess.PIPE, stderr=handle, text=True)
    status, kib = done.stdout.strip().splitlines()[-1].split()
    return int(status), round(int(kib) / 1024 ** 2, 3), round(time.time() - start, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimate-only", action="store_true")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mem.WORK.mkdir(parents=True, exist_ok=True)
    if args.estimate_only:
        mem.make_model(weights=False)
        row = {"model": "internlm-chat-7b shape, nf4 config", "date": datetime.date.today().isoformat(), **estimate()}
        (args.out / "h200-host-estimate.json").write_text(json.dumps(row, indent=1) + "\n")
        print(json.dumps(row, indent=1))
        return
    guess = estimate()
    adapter, merged = mem.WORK / "adapter", mem.WORK / "merged"
    steps = {"pth_to_hf": ["-m", "xtuner.tools.model_converters.pth_to_hf", str(args.config), str(args.checkpoint),
                           str(adapter)],
             "merge": ["-m", "xtuner.tools.model_converters.merge", str(mem.MODEL), str(adapter), str(merged)]}
    rows = []
    for name, command in steps.items():
        status, rss, seconds = peak_rss([sys.executable, *command], args.out / f"host_{name}.log")
        rows.append({"step": name, "date": datetime.date.today().isoformat(), "status": status, "measured_gib": rss,
                     "estimated_gib": guess[name], "seconds": seconds, "shard_gib": guess["shard_gib"],
                     "error_pct": round(100 * (guess[name] - rss) / rss, 1) if rss else None})
        print(rows[-1], flush=True)
        (args.out / "h200-host.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
