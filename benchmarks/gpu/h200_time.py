"""Measure xtuner's per-iteration training time on the H200, for the time model (issue #16).

Run on the lent H200 (see benchmarks/gpu/README.md):

    python benchmarks/gpu/h200_time.py --out $OUT --phase fit     # the runs the model is fitted on
    python benchmarks/gpu/h200_time.py --fit $OUT/h200-time.json  # here: fit, write the model, commit it
    python benchmarks/gpu/h200_time.py --out $OUT --phase check   # then: shapes the fit never saw

Each run is a config `gen` writes (random internlm-chat-7b-shaped model, as h200_memory.py), trained
by xtuner's own train script for 20 iterations. The training process records, for every
iteration, the shape of the batch the model received (sequences x padded length) beside the
time mmengine logged for it, and its peak host memory. Rows append to OUT/h200-time.json.

A check row also carries the estimate `validate` makes *before* the run (the committed model,
at the data's real lengths, without knowing the batch order), and its error.
"""

import argparse
import datetime
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_memory as mem  # noqa: E402 - the model, data and config builders are shared

STEPS = 20
CHECK_STEPS = 40  # past two optimizer steps of accumulative_counts 16
SKIP = 3  # the first iterations compile kernels and warm the allocator
# (name, recipe, data, max_length, quantization, batch, pack, deepspeed); data: "uniform:N" (N-word
# answers: every sample about the same length) or the recipe's own generator ("short": msagent's ~400 tokens).
FIT = [
    ("packed-2048-b1", "oasst1", "", 2048, "nf4", 1, True, ""),
    ("uniform1000-b8", "oasst1", "uniform:700", 2048, "nf4", 8, False, ""),
    ("uniform2000-b8", "oasst1", "uniform:1400", 2048, "nf4", 8, False, ""),
    ("uniform500-b16", "oasst1", "uniform:340", 2048, "nf4", 16, False, ""),
    ("uniform1000-b8-zero2", "oasst1", "uniform:700", 2048, "nf4", 8, False, "deepspeed_zero2"),
    ("uniform1000-b8-none", "oasst1", "uniform:700", 2048, "none", 8, False, ""),
    ("packed-1024-b1-none", "oasst1", "", 1024, "none", 1, True, ""),
]
CHECK = [
    ("msagent-short-b8", "msagent", "short", 2048, "nf4", 8, False, ""),
    ("packed-2048-b4", "oasst1", "", 2048, "nf4", 4, True, ""),
    ("msagent-short-b8-zero2", "msagent", "short", 2048, "nf4", 8, False, "deepspeed_zero2"),
    ("uniform700-b4-none", "oasst1", "uniform:480", 2048, "none", 4, False, ""),
]


def uniform_data(words: int) -> Path:
    """1,500 OASST1 rows whose answers all have ``words`` words: batches pad to about the same length."""
    path = mem.WORK / f"oasst1-uniform{words}.jsonl"
    if not path.is_file():
        rng = random.Random(2)
        path.write_text("".join(json.dumps({"text": f"### Human: {mem.text(rng, 30)}?### Assistant: "
                                                    f"{mem.text(rng, words)}"}) + "\n" for _ in range(1500)))
    return path


def make_config(name: str, recipe: str, data: str, max_length: int, quantization: str, batch: int, pack: bool,
                extra: tuple[str, ...] = (), prefix: str = "time_") -> Path:
    from xtuner_recipes.generate import generate
    from xtuner_recipes.rewrite import parse_override

    path = uniform_data(int(data.split(":")[1])) if data.startswith("uniform:") else mem.make_data(
        recipe, short=data == "short")
    sets = [f"max_length={max_length}", f"pack_to_max_length={pack}", f"batch_size={batch}",
            "dataloader_num_workers=2", *extra]
    if quantization == "none":
        sets.append("~model.llm.quantization_config")
    out = mem.WORK / f"{prefix}{name}.py"
    out.write_text(generate(recipe, str(mem.MODEL), data=str(path), overrides=[parse_override(s) for s in sets],
                            output=out).code)
    return out


def child(config: str, work_dir: str, result_path: str, deepspeed: str, steps: str) -> None:
    """In a fresh process: xtuner's train script, recording each batch's shape as the model gets it.
    Check runs (40 steps) log every iteration's own time (window 1), not mmengine's mean of 10."""
    import torch
    from mmengine.config import Config
    from xtuner.model.sft import SupervisedFinetune

    from xtuner_recipes.smoke.adapt import adapt_on_load as _adapt_on_load
    from xtuner_recipes.smoke.worker import _run_tool

    shapes = []
    forward = SupervisedFinetune.forward

    def recording(self, data, data_samples=None, mode="loss"):
        if mode == "loss":
            shapes.append(list(data["input_ids"].shape))
        return forward(self, data, data_samples, mode)

    SupervisedFinetune.forward = recording
    notes: list[str] = []
    device = os.environ.get("H200_DEVICE", "cuda")  # cpu: benchmarks/calibrate_cpu.py, smoke's CPU adaptations
    _adapt_on_load({"config": config, "model_from": str(mem.MODEL), "model": str(mem.MODEL), "steps": int(steps),
                    "device": device}, notes)
    if device == "cpu":
        from xtuner_recipes.smoke.adapt import patch_runtime

        notes += patch_runtime(device)
    if int(steps) != STEPS or os.environ.get("H200_WINDOW_ONE"):  # a check run (--steps 20 included)
        adapted = Config.fromfile

        def window_one(filename, *args, **kwargs):
            cfg = adapted(filename, *args, **kwargs)
            cfg.setdefault("log_processor", {})["window_size"] = 1
            return cfg

        Config.fromfile = staticmethod(window_one)
    if deepspeed:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29512")
    start = time.time()
    _run_tool("xtuner.tools.train", [config, "--work-dir", work_dir, *(["--deepspeed", deepspeed] if deepspeed else [])])
    Path(result_path).write_text(json.dumps({
        "shapes": shapes, "seconds": time.time() - start,
        "host_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 3),
        "workers_rss_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2, 3),
        "max_memory_reserved_gib": round(torch.cuda.max_memory_reserved() / 1024 ** 3, 3) if device == "cuda" else None}))


def predicted(config: Path, deepspeed: str) -> dict:
    """What `validate --level full [--deepspeed]` estimates before the run: seconds an iteration, at the data's lengths."""
    from xtuner_recipes.validate.runner import validate_config
    from xtuner_recipes.validate.inputs import Launch

    stage = Launch.from_preset(deepspeed or None).stage
    report = validate_config(str(config), level="full", launch=Launch(gpus=1, stage=stage))
    return {key: report.stats.get(key) for key in ("seconds_per_iter", "time_basis", "longest_sample", "samples")}


def measure(run: tuple, out: Path, check: bool) -> dict:
    name, recipe, data, max_length, quant, batch, pack, deepspeed = run
    config = make_config(name, recipe, data, max_length, quant, batch, pack)
    row = {"recipe": recipe, "data": data or recipe, "max_length": max_length, "quantization": quant,
           "batch_size": batch, "pack": pack}
    return row | measure_config(name, config, deepspeed, out, check, estimate=check)


def measure_config(name: str, config: Path, deepspeed: str, out: Path, check: bool, estimate: bool = False,
                   steps: int | None = None) -> dict:
    """xtuner's train script on ``config`` in a child process: every iteration's batch shape and time."""
    row = {"name": name, "deepspeed": deepspeed or None, "date": datetime.date.today().isoformat(),
           "phase": "check" if check else "fit"}
    if estimate:
        row["estimate"] = predicted(config, deepspeed)
    work_dir, result = mem.WORK / "runs" / f"time_{name}", mem.WORK / f"time_{name}.result.json"
    with open(out / f"time_{name}.log", "w") as log:
        steps = str(steps or (CHECK_STEPS if check else STEPS))
        status = subprocess.run([sys.executable, __file__, "--child", str(config), str(work_dir), str(result), deepspeed,
                                 steps],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **({"H200_WINDOW_ONE": "1"} if check else {})}).returncode
    if status != 0:
        row["error"] = (out / f"time_{name}.log").read_text().strip().splitlines()[-1]
        return row
    got = json.loads(result.read_text())
    times = mem.logged(work_dir, "time")
    shapes = got.pop("shapes")
    # mmengine logs one time per iteration; the model saw one batch per iteration (plus none at eval)
    row.update(got, iterations=[{"sequences": s[0], "length": s[1], "seconds": t}
                                for s, t in zip(shapes[SKIP:], times[SKIP:])])
    # fit runs: mmengine's mean of the last 10 (see fit_time.fit); check runs: every iteration after the warmup
    row["mean_seconds"] = round(statistics.fmean(times[SKIP:]) if check else times[-1], 4)
    if check and row.get("estimate", {}).get("seconds_per_iter"):
        row["error_pct"] = round(100 * (row["estimate"]["seconds_per_iter"] - row["mean_seconds"]) / row["mean_seconds"], 1)
    return row


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", choices=("fit", "check"))
    parser.add_argument("--only", nargs="*", help="run names")
    parser.add_argument("--fit", type=Path, metavar="RESULTS", help="fit the model to RESULTS' fit rows and write it")
    args = parser.parse_args()
    if args.fit:
        from fit_time import fit

        from xtuner_recipes.validate.estimate import timing

        model = fit(json.loads(args.fit.read_text()))
        timing.MODEL_PATH.write_text(json.dumps(model, indent=1) + "\n")
        print(json.dumps(model, indent=1))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    mem.WORK.mkdir(parents=True, exist_ok=True)
    mem.make_model()
    path = args.out / "h200-time.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    for run in FIT if args.phase == "fit" else CHECK:
        if args.only and run[0] not in args.only:
            continue
        start = time.time()
        row = measure(run, args.out, args.phase == "check")
        rows.append(row)
        path.write_text(json.dumps(rows, indent=1))
        print(f"{run[0]}: {row.get('mean_seconds')} s/iter, estimate {row.get('estimate')}, error "
              f"{row.get('error_pct')}%, host {row.get('host_rss_gib')} GiB {row.get('error', '')} "
              f"[{time.time() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
