"""`calibrate`'s method checked on the one device this machine has, its CPU (issue #25): calibrate on one 16-bit
LoRA config of a small Llama shape, then predict seconds an iteration for configs it did not see (other lengths,
batches, LoRA ranks, packed and not) and time xtuner's own train script on each.

    python benchmarks/calibrate_cpu.py --estimate-only   # calibrate, the estimates: commit them first
    python benchmarks/calibrate_cpu.py                   # then the runs (same machine, soon after)

Each run is h200_time.py's (xtuner's train script in a child process with smoke's CPU adaptations, every
iteration's time logged; the first 3 left out), repeated; the point is the median of the runs' means. Rows go to
benchmarks/results/cpu-calibrate-estimate.json and cpu-calibrate.json. The CPU is not a GPU: this checks the
method (two small copies, four timed steps, three constants carried to a deeper model and other shapes), not a
GPU's numbers.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.setdefault("H200_WORK", "/tmp/calibrate-cpu"))
os.environ["H200_DEVICE"] = "cpu"
os.environ["XDG_CACHE_HOME"] = str(WORK / "cache")  # this benchmark's calibration, not the user's
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
sys.path.insert(0, str(ROOT))
import h200_memory as mem  # noqa: E402
import h200_time  # noqa: E402

SHAPE = dict(model_type="llama", hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=4,
             num_key_value_heads=4, vocab_size=400, max_position_embeddings=4096, tie_word_embeddings=False)
# (name, data, max_length, batch, pack, lora r); data: "" (oasst1's generator) or "uniform:N" (N-word answers)
CALIBRATED_ON = ("packed512-r64", "", 512, 1, True, 64)
RUNS = [
    CALIBRATED_ON,
    ("packed1024-r16", "", 1024, 1, True, 16),
    ("packed256-b4-r128", "", 256, 4, True, 128),
    ("uniform-b4-r8", "uniform:120", 512, 4, False, 8),
    ("packed2048-r64", "", 2048, 1, True, 64),
]
STEPS, REPEAT = 12, 2
ESTIMATES = ROOT / "benchmarks" / "results" / "cpu-calibrate-estimate.json"
RESULTS = ROOT / "benchmarks" / "results" / "cpu-calibrate.json"


def make_config(run: tuple) -> Path:
    name, data, length, batch, pack, rank = run
    return h200_time.make_config(name, "oasst1", data, length, "none", batch, pack, extra=(f"model.lora.r={rank}",),
                                 prefix="cpu_")


def estimate_all() -> None:
    from xtuner_recipes.calibrate import measure
    from xtuner_recipes.validate.estimate import calibration
    from xtuner_recipes.validate.inputs import Launch, Options
    from xtuner_recipes.validate.runner import validate_config

    configs = {run[0]: make_config(run) for run in RUNS}
    entry = measure(configs[CALIBRATED_ON[0]], scratch=WORK, progress=print)
    calibration.save(entry)
    rows = []
    for run in RUNS:
        stats = validate_config(str(configs[run[0]]), level="full", launch=Launch(gpus=1, stage=0),
                                options=Options(gpu="cpu")).stats
        rows.append({"name": run[0], "max_length": run[2], "batch_size": run[3], "pack": run[4], "lora_r": run[5],
                     "in_sample": run == CALIBRATED_ON, "seconds_per_iter": stats.get("seconds_per_iter"),
                     "parts": stats.get("seconds_per_iter_parts"), "time_basis": stats.get("time_basis")})
    ESTIMATES.write_text(json.dumps({"date": datetime.date.today().isoformat(), "shape": SHAPE,
                                     "machine": f"{os.cpu_count()} cores", "calibration": entry, "rows": rows},
                                    indent=1) + "\n")
    for row in rows:
        print(f"{row['name']:22} {row['seconds_per_iter']} s")


def measure_all() -> None:
    committed = {row["name"]: row for row in json.loads(ESTIMATES.read_text())["rows"]}
    out = WORK / "logs"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in RUNS:
        config = make_config(run)
        means = []
        for attempt in range(REPEAT):
            row = h200_time.measure_config(f"cpu-{run[0]}-{attempt + 1}", config, "", out, check=True, steps=STEPS)
            if "error" in row:
                raise SystemExit(f"{run[0]}: {row['error']}")
            means.append(row["mean_seconds"])
        measured = statistics.median(means)
        estimate = committed[run[0]]["seconds_per_iter"]
        rows.append({"name": run[0], "in_sample": run == CALIBRATED_ON, "runs": means, "measured_s": round(measured, 4),
                     "estimate_s": estimate, "error_pct": round(100 * (estimate - measured) / measured, 1)})
        print(f"{run[0]:22} measured {measured:.3f} s (runs {means}), estimated {estimate} s: "
              f"{rows[-1]['error_pct']:+.1f}%", flush=True)
    held = [abs(row["error_pct"]) for row in rows if not row["in_sample"]]
    RESULTS.write_text(json.dumps({"date": datetime.date.today().isoformat(), "steps": STEPS, "skip": h200_time.SKIP,
                                   "rows": rows, "held_out": {"configs": len(held), "median_abs_pct": statistics.median(held),
                                                              "worst_abs_pct": max(held)}}, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimate-only", action="store_true", help="calibrate and estimate; commit before the runs")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    mem.MODEL = WORK / "small-llama"
    os.environ["H200_MODEL"] = str(mem.MODEL)
    mem.make_model_of(mem.MODEL, SHAPE, weights=True)
    estimate_all() if args.estimate_only else measure_all()


if __name__ == "__main__":
    main()
