"""The held-out check of the FLOP time model (issue #25): twelve configs `gen` writes for four model shapes no fit
has used — Llama-2-7B, Llama-3-8B (GQA, 128k vocabulary), Qwen2-7B (untied 152k vocabulary), OLMoE-1B-7B (a
mixture of experts) — packed and unpacked, 512–4096 tokens, batch 1–8, LoRA r 8–128, 4-bit and 16-bit, without
DeepSpeed and under ZeRO-2 (the time model has no ZeRO-3 constant: such a run would get no estimate).

    python benchmarks/gpu/h200_time_check2.py --estimate-only --out benchmarks/results   # here, first: commit
    python benchmarks/gpu/h200_time_check2.py --out $OUT [--only NAME...] [--repeat 3] [--budget 540]  # on the GPU

``--set 3``: the second held-out check (``RUNS3``, files ``h200-time-check3*``), twelve more configs for the model
refitted on the first check's runs (the longer of the card's and the host's work), its estimates committed first.
``H200_ESTIMATE_VERSION=-v4 … --estimate-only``: a later model's estimates (``-estimate-v4.json``), each also at
host paces of 5–13 µs (``at_pace``), which ``--compare`` reads at the pace each run's host probe measured.

The estimates are what `validate` says before the run, on the H200 and on the H100 (the device lends either).
Each run is h200_time.py's (xtuner's own train script, 40 iterations, every iteration's time and batch shape
recorded); one random-weight model is kept on the disk at a time. Rows go to OUT/h200-time-check2.json.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_memory as mem  # noqa: E402
import h200_time  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The shape fields of each model's config.json (the hub's; Qwen2-7B: Qwen/Qwen2-7B).
HUB = json.loads((ROOT / "xtuner_recipes" / "hub_models.json").read_text())
SHAPES = {
    "llama2-7b": HUB["meta-llama/Llama-2-7b-hf"],
    "llama3-8b": HUB["meta-llama/Meta-Llama-3-8B"],
    "qwen2-7b": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
                     rope_theta=1000000.0, tie_word_embeddings=False),
    "olmoe": dict(model_type="olmoe", hidden_size=2048, intermediate_size=1024, num_hidden_layers=16,
                  num_attention_heads=16, num_key_value_heads=16, vocab_size=50304, num_experts=64,
                  num_experts_per_tok=8, max_position_embeddings=4096, tie_word_embeddings=False),
}
# (name, shape, recipe, data, max_length, quantization, batch, pack, deepspeed, lora r)
RUNS = [
    ("llama2-packed512-r8", "llama2-7b", "oasst1", "", 512, "nf4", 1, True, "", 8),
    ("llama2-packed4096-r64", "llama2-7b", "oasst1", "", 4096, "nf4", 1, True, "", 64),
    ("llama2-uniform-b4-r128-zero2", "llama2-7b", "oasst1", "uniform:700", 2048, "nf4", 4, False, "deepspeed_zero2", 128),
    ("llama3-packed2048-b2-r16", "llama3-8b", "oasst1", "", 2048, "nf4", 2, True, "", 16),
    ("llama3-msagent-b8-r64", "llama3-8b", "msagent", "short", 2048, "nf4", 8, False, "", 64),
    ("llama3-packed1024-16bit", "llama3-8b", "oasst1", "", 1024, "none", 1, True, "", 64),
    ("qwen2-packed2048-r64", "qwen2-7b", "oasst1", "", 2048, "nf4", 1, True, "", 64),
    ("qwen2-packed1024-b4-r32-zero2", "qwen2-7b", "medqa", "", 1024, "nf4", 4, True, "deepspeed_zero2", 32),
    ("qwen2-uniform-b8-r8", "qwen2-7b", "oasst1", "uniform:340", 2048, "nf4", 8, False, "", 8),
    ("olmoe-packed512-r8", "olmoe", "oasst1", "", 512, "nf4", 1, True, "", 8),
    ("olmoe-packed4096-r64", "olmoe", "oasst1", "", 4096, "nf4", 1, True, "", 64),
    ("olmoe-uniform-b2-r16", "olmoe", "oasst1", "uniform:700", 2048, "nf4", 2, False, "", 16),
]

# The second check (--set 3): configs no fit has used, for the model fitted 2026-12-07 on the first check's runs.
RUNS3 = [
    ("llama2-packed1024-b2-r32", "llama2-7b", "oasst1", "", 1024, "nf4", 2, True, "", 32),
    ("llama2-medqa-b4-r16", "llama2-7b", "medqa", "", 2048, "nf4", 4, False, "", 16),
    ("llama2-packed2048-16bit", "llama2-7b", "oasst1", "", 2048, "none", 1, True, "", 64),
    ("llama2-packed2048-r64-zero2", "llama2-7b", "oasst1", "", 2048, "nf4", 1, True, "deepspeed_zero2", 64),
    ("llama3-packed512-b4-r8", "llama3-8b", "oasst1", "", 512, "nf4", 4, True, "", 8),
    ("llama3-packed4096-r128-zero2", "llama3-8b", "oasst1", "", 4096, "nf4", 1, True, "deepspeed_zero2", 128),
    ("llama3-uniform-b2-r32", "llama3-8b", "oasst1", "uniform:1000", 2048, "nf4", 2, False, "", 32),
    ("qwen2-packed512-r16", "qwen2-7b", "oasst1", "", 512, "nf4", 1, True, "", 16),
    ("qwen2-packed4096-16bit", "qwen2-7b", "oasst1", "", 4096, "none", 1, True, "", 64),
    ("qwen2-msagent-b4-r64", "qwen2-7b", "msagent", "short", 2048, "nf4", 4, False, "", 64),
    ("olmoe-packed1024-b2-r32", "olmoe", "oasst1", "", 1024, "nf4", 2, True, "", 32),
    ("olmoe-uniform-b2-r16", "olmoe", "oasst1", "uniform:700", 2048, "nf4", 2, False, "", 16),
]
AT_PACES = [5.0 + i for i in range(9)]  # v4's estimates at these host paces (µs an op), 5 to 13
PREFIX = "h200-time-check2"  # the set's files; --set 3 makes it h200-time-check3


def use_shape(shape: str, weights: bool) -> None:
    """Point h200_memory at this shape's model folder (made if missing; other shapes' weights removed first)."""
    folder = mem.WORK / f"time2-{shape}"
    if weights:
        for other in mem.WORK.glob("time2-*"):
            if other != folder and list(other.glob("*.safetensors")):
                shutil.rmtree(other)
    mem.MODEL = folder
    os.environ["H200_MODEL"] = str(folder)
    mem.make_model_of(folder, SHAPES[shape], weights=weights)


def make_config(run: tuple) -> Path:
    name, _, recipe, data, max_length, quantization, batch, pack, _, rank = run
    return h200_time.make_config(name, recipe, data, max_length, quantization, batch, pack,
                                 extra=(f"model.lora.r={rank}",), prefix="time2_")


def estimates(run: tuple, config: Path) -> dict:
    from xtuner_recipes.validate.estimate import cards, timing
    from xtuner_recipes.validate.inputs import Launch, Options
    from xtuner_recipes.validate.runner import validate_config

    stage = Launch.from_preset(run[8] or None).stage
    found = {}
    base = timing.load_model()
    for card in ("h200", "h100"):
        stats = validate_config(str(config), level="full", launch=Launch(gpus=1, stage=stage),
                                options=Options(gpu=cards.find(card).name)).stats
        found[card] = {key: stats.get(key) for key in ("seconds_per_iter", "seconds_per_iter_range", "time_card",
                                                        "time_basis", "longest_sample", "samples", "time_calibrated")}
        if base.get("host_pace_us"):  # v4: the estimate at each host pace (what validate says once calibrate
            found[card]["at_pace"], original = [], timing.load_model  # measured that pace), to read at the
            try:  # pace each run's host measured
                for pace in AT_PACES:
                    timing.load_model = lambda pace=pace: dict(base, host_op_us=pace)
                    found[card]["at_pace"].append([pace, validate_config(
                        str(config), level="full", launch=Launch(gpus=1, stage=stage),
                        options=Options(gpu=cards.find(card).name)).stats["seconds_per_iter"]])
            finally:
                timing.load_model = original
    return found


def _paced(at_pace: list, pace: float) -> float:
    """The committed estimate at a host pace: linear between the two committed paces around it."""
    import numpy as np

    paces, seconds = zip(*at_pace)
    return float(np.interp(pace, paces, seconds))


def calibrate(config: Path, run: tuple, out: Path, layers: list[int] | None = None) -> None:
    """``xtuner-recipes calibrate CONFIG`` in its own process, its cache in OUT/calibration-SHAPE (both
    quantizations of a shape merge there), its JSON in OUT/calibrate-SHAPE-QUANTIZATION[-LA-B].json (``layers``:
    calibrate's --layers A B)."""
    start = time.time()
    tag = f"-L{layers[0]}-{layers[1]}" if layers else ""
    env = {**os.environ, "XDG_CACHE_HOME": str(out / f"calibration-{run[1]}")}
    with open(out / f"calibrate-{run[1]}-{run[5]}{tag}.json", "w") as stdout, \
            open(out / f"calibrate-{run[1]}-{run[5]}{tag}.log", "w") as stderr:
        command = [sys.executable, "-m", "xtuner_recipes", "calibrate", str(config), "--json", "--scratch",
                   str(mem.WORK), *(["--layers", *map(str, layers)] if layers else [])]
        status = subprocess.run(command, stdout=stdout, stderr=stderr, env=env).returncode
    print(f"calibrate {run[1]} {run[5]} on {run[0]}: exit {status} [{time.time() - start:.0f} s]", flush=True)


def compare(results: Path, out: Path) -> None:
    """Each measured config's median seconds an iteration over its runs (and their spread) against the estimate
    committed before the runs for the card they ran on, and the calibrated one where calibrate ran; the summary
    the issue's bar reads (median and worst absolute error). Written to OUT/PREFIX-errors.json (set 3: the
    "v2" fields repeat the one committed estimate)."""
    import statistics

    rows = json.loads((results / f"{PREFIX}.json").read_text())
    committed = {row["name"]: row["estimate"] for row in
                 json.loads((ROOT / "benchmarks" / "results" / f"{PREFIX}-estimate.json").read_text())}
    # set 2: the model refitted with SDPA's causal kernel (2026-12-07), its estimates committed before the runs too
    second_path = ROOT / "benchmarks" / "results" / f"{PREFIX}-estimate-v2.json"
    second = ({row["name"]: row["estimate"] for row in json.loads(second_path.read_text())}
              if second_path.is_file() else committed)
    # set 3: the v4 model (the host's part at the host's pace), its estimates committed before its configs' runs
    fourth_path = ROOT / "benchmarks" / "results" / f"{PREFIX}-estimate-v4.json"
    fourth = ({row["name"]: row["estimate"] for row in json.loads(fourth_path.read_text())}
              if fourth_path.is_file() else {})
    calibrated_path = results / f"{PREFIX}-calibrated.json"
    calibrated = ({row["name"]: row["estimate"] for row in json.loads(calibrated_path.read_text())}
                  if calibrated_path.is_file() else {})
    found = []
    for name in dict.fromkeys(row["name"] for row in rows):
        run = next(r for r in RUNS if r[0] == name)
        runs, left = [], []
        for row in rows:
            if row["name"] != name or not row.get("mean_seconds"):
                continue
            why = _not_the_estimates(row, run, committed[name])
            (left if why else runs).append(why or row)
        if not runs:
            if left:
                found.append({"name": name, "card": rows[0]["card"], "excluded": left[0]})
            continue
        card = runs[0]["card"]
        key = "h200" if "H200" in card else "h100"
        # runs of --steps 20 before 2026-12-07's fix logged mmengine's mean of the last 10 iterations: the last
        # value is then the mean of iterations 11-20 (one optimizer step among them)
        windowed = [row.get("steps") == 20 and row.get("windowed", True) for row in runs]
        points = [row["iterations"][-1]["seconds"] if old else row["mean_seconds"] for row, old in zip(runs, windowed)]
        measured = statistics.median(points)
        line = {"name": name, "card": card, "runs": len(runs), "runs_excluded": left, "measured_s": round(measured, 4),
                "spread_pct": round(100 * (max(points) - min(points)) / measured, 1),
                "estimate_s": committed[name][key]["seconds_per_iter"]}
        line["error_pct"] = _error(line["estimate_s"], measured)
        line["estimate_v2_s"] = second[name][key]["seconds_per_iter"]
        line["error_v2_pct"] = _error(line["estimate_v2_s"], measured)
        # the steady iteration: the median of a run's iterations (a 17-iteration mean carries a padded run's
        # first-shape warm-ups, which a long run spreads thin); runs that logged only windowed means have none
        steady = [statistics.median(i["seconds"] for i in row["iterations"])
                  for row, old in zip(runs, windowed) if not old]
        if steady:
            line["steady_s"] = round(statistics.median(steady), 4)
            line["steady_error_latest_pct"] = _error(line["estimate_v2_s"], line["steady_s"])
        paces = [row["host_op_us"] for row in runs if row.get("host_op_us")]
        if paces:
            line["host_op_us"] = [min(paces), max(paces)]
        if name in fourth:
            line["estimate_v4_s"] = fourth[name][key]["seconds_per_iter"]
            line["error_v4_pct"] = _error(line["estimate_v4_s"], measured)
            if len(paces) == len(runs):  # v4 at each run's own host pace: the estimate once calibrate measured it
                line["estimate_v4_paced_s"] = round(statistics.median(
                    _paced(fourth[name][key]["at_pace"], pace) for pace in paces), 4)
                line["error_v4_paced_pct"] = _error(line["estimate_v4_paced_s"], measured)
        guess = calibrated.get(name, {}).get(key, {})
        if guess.get("time_calibrated"):
            line["calibrated_s"] = guess["seconds_per_iter"]
            line["calibrated_error_pct"] = _error(guess["seconds_per_iter"], measured)
        found.append(line)

    def summary(key):
        errors = [abs(line[key]) for line in found if key in line and "excluded" not in line]
        return {"configs": len(errors), "median_abs_pct": round(statistics.median(errors), 1) if errors else None,
                "worst_abs_pct": max(errors) if errors else None}

    report = {"date": datetime.date.today().isoformat(), "rows": found,
              "table": summary("error_pct"), "table_v2": summary("error_v2_pct"),
              "table_latest_steady": summary("steady_error_latest_pct"),
              "table_v4": summary("error_v4_pct"), "table_v4_paced": summary("error_v4_paced_pct"),
              "calibrated": summary("calibrated_error_pct")}
    (out / f"{PREFIX}-errors.json").write_text(json.dumps(report, indent=1) + "\n")
    for line in found:
        if "excluded" in line:
            print(f"{line['name']:32} excluded: {line['excluded']}")
            continue
        print(f"{line['name']:32} {line['runs']} runs {line['measured_s']:7.3f} s (spread {line['spread_pct']:4.1f}%)  "
              f"table {line['estimate_s']:6.3f} {line['error_pct']:+6.1f}%  v2 {line['error_v2_pct']:+6.1f}%  calibrated "
              f"{line.get('calibrated_s', '-')} {line.get('calibrated_error_pct', '')}")
    for line in found:
        if "error_v4_pct" in line:
            print(f"{line['name']:32} v4 {line['estimate_v4_s']:6.3f} {line['error_v4_pct']:+6.1f}%  at the runs' paces "
                  f"{line.get('host_op_us')}: {line.get('estimate_v4_paced_s')} {line.get('error_v4_paced_pct', '')}")
    print(json.dumps({k: report[k] for k in ("table", "table_v2", "table_latest_steady", "table_v4", "table_v4_paced",
                                             "calibrated")}))


def _error(estimate: float, measured: float) -> float:
    return round(100 * (estimate - measured) / measured, 1)


def _not_the_estimates(row: dict, run: tuple, committed: dict) -> str | None:
    """Why a measured run is not of the batches its estimate is for (2026-12-07, llama2-*: a tokenizer folder
    made by another transformers gave 186-token and 2-token samples), or None."""
    lengths = {i["length"] for i in row["iterations"]}
    longest = max((card["longest_sample"] or 0) for card in committed.values())
    if (run[7] and lengths != {run[4]}) or (not run[7] and max(lengths) < longest / 2):
        return (f"run {row.get('attempt')}: batch lengths {sorted(lengths)[:4]}, not the "
                f"{'packed ' + str(run[4]) if run[7] else 'data'} the estimate is for")
    return None


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        h200_time.child(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimate-only", action="store_true", help="no GPU: the estimates, to commit first")
    parser.add_argument("--only", nargs="*", help="run names")
    parser.add_argument("--set", choices=("2", "3"), default="2", help="which held-out check (3: RUNS3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs each config should have in all: the runs of earlier calls in OUT's results count")
    parser.add_argument("--budget", type=float, metavar="SECONDS",
                        help="start no run that would end past this many seconds (a device call's limit, less the "
                             "copying back): a run cut by the call's timeout is lost")
    parser.add_argument("--steps", type=int, default=h200_time.CHECK_STEPS,
                        help="iterations a run (20: one optimizer step of 16 among the 17 timed, half the device time)")
    parser.add_argument("--calibrate", action="store_true",
                        help="first run `xtuner-recipes calibrate` on each shape's first config of each quantization")
    parser.add_argument("--calibrate-layers", type=int, nargs=2, metavar=("A", "B"),
                        help="with --calibrate: calibrate's --layers (deeper copies)")
    parser.add_argument("--calibrated", type=Path, metavar="DIR",
                        help="with --estimate-only: the estimates with the calibrations a --calibrate run printed "
                             "(DIR/h200-calibrate-SHAPE-QUANTIZATION.json)")
    parser.add_argument("--compare", type=Path, metavar="RESULTS",
                        help="no GPU: each config's median over its runs in RESULTS (the folder of "
                             "h200-time-check2.json) against the committed estimates; written to OUT")
    args = parser.parse_args()
    global RUNS, PREFIX
    if args.set == "3":
        RUNS, PREFIX = RUNS3, "h200-time-check3"
    args.out.mkdir(parents=True, exist_ok=True)
    mem.WORK.mkdir(parents=True, exist_ok=True)
    chosen = [run for run in RUNS if not args.only or run[0] in args.only]
    if args.estimate_only:
        rows = []
        for run in chosen:
            use_shape(run[1], weights=False)
            if args.calibrated:  # the calibrate runs' JSON (h200-calibrate-SHAPE-QUANTIZATION.json), as a cache
                cache = mem.WORK / f"calibration-{run[1]}"
                os.environ["XDG_CACHE_HOME"] = str(cache)
                from xtuner_recipes.validate.estimate import calibration

                for made in sorted(args.calibrated.glob(f"h200-calibrate-{run[1]}-*.json")):
                    calibration.save(json.loads(made.read_text())["calibration"])
            rows.append({"name": run[0], "shape": run[1], "lora_r": run[9], "date": datetime.date.today().isoformat(),
                         "estimate": estimates(run, make_config(run))})
        name = (f"{PREFIX}-calibrated.json" if args.calibrated
                else f"{PREFIX}-estimate{os.environ.get('H200_ESTIMATE_VERSION', '')}.json")
        (args.out / name).write_text(json.dumps(rows, indent=1) + "\n")
        print(json.dumps(rows, indent=1))
        return
    if args.compare:
        compare(args.compare, args.out)
        return
    import torch

    from xtuner_recipes.calibrate_probes import host_op_us, host_sync_us

    card = torch.cuda.get_device_name(0)
    path = args.out / f"{PREFIX}.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    calibrated, began, took = set(), time.time(), {}

    def fits(run, extra: float = 0.0) -> bool:
        """Whether a run of this shape (its last run's seconds, else a guess) ends inside --budget."""
        guess = took.get(run[1], 220.0 if run[1] == "olmoe" else 70.0) + extra
        if args.budget and time.time() - began + guess > args.budget:
            print(f"{run[0]}: not started, ~{guess:.0f} s would pass the {args.budget} s budget", flush=True)
            return False
        return True

    for run in sorted(chosen, key=lambda r: r[1]):  # one model made a shape
        missing = args.repeat - sum(row["name"] == run[0] for row in rows)  # earlier calls' runs count
        if missing <= 0:
            print(f"{run[0]}: has its {args.repeat} runs already", flush=True)
            continue
        if not fits(run, extra=30.0):  # the shape's model folder is made first
            break
        use_shape(run[1], weights=True)
        config = make_config(run)
        if args.calibrate and (run[1], run[5]) not in calibrated:  # the shape's first config of this quantization
            calibrated.add((run[1], run[5]))
            calibrate(config, run, args.out, args.calibrate_layers)
        for _ in range(missing):
            if not fits(run):
                break
            start = time.time()
            before = host_op_us("cuda"), host_sync_us("cuda")  # the host's pace before the run, and after it below
            attempt = sum(row["name"] == run[0] for row in rows)  # runs of earlier calls count: names stay unique
            row = h200_time.measure_config(f"{run[0]}-{attempt + 1}", config, run[8], args.out, check=True,
                                          steps=args.steps)
            took[run[1]] = time.time() - start
            row.update(name=run[0], shape=run[1], lora_r=run[9], attempt=attempt + 1, steps=args.steps, card=card,
                       windowed=False, host_op_us=host_op_us("cuda"),  # this host's pace, for comparing hosts
                       host_op_us_before=before[0], host_sync_us_before=before[1], host_sync_us=host_sync_us("cuda"),
                       max_length=run[4],
                       quantization=run[5], batch_size=run[6], pack=run[7])
            rows.append(row)
            path.write_text(json.dumps(rows, indent=1) + "\n")
            print(f"{run[0]} #{attempt + 1}: {row.get('mean_seconds')} s/iter {row.get('error', '')} "
                  f"[{time.time() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
