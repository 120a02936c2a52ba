"""Time plan's commands end to end on the GPU (issue #25): xtuner's train script from its start to its exit (model
load, data build, EvaluateChatHook's generations, the iterations, checkpoint saves), then pth_to_hf and merge,
against validate's whole-run estimate (``stats.run_parts_s``) committed before the run.

    python benchmarks/gpu/h200_whole_run.py --estimate-only --out benchmarks/results   # here, first: commit it
    python benchmarks/gpu/h200_whole_run.py --out $OUT --only medqa-1024              # on the GPU
    python benchmarks/gpu/h200_whole_run.py --compare benchmarks/results --out benchmarks/results   # then here

The commands are plan's for one GPU under deepspeed_zero2, run as the scripts ``xtuner`` starts (the device's
packages are installed with ``--target``: no console scripts): ``python -m xtuner.tools.train CFG --deepspeed
deepspeed_zero2 --work-dir W``, ``python -m xtuner.tools.model_converters.pth_to_hf …``, ``… merge …``. The model
is a random one of internlm-chat-7b's shape (h200_memory.py). The config's logger logs every iteration (interval 1)
so that the iterations' own time is the sum of the times mmengine logs; the rest is read from the log's
timestamps (whole seconds): each EvaluateChatHook round from its "in EvaluateChatHook" line to its last sample,
each checkpoint from "Saving checkpoint" to the next line, and load plus data from the process start to the first
round.
"""

import argparse
import datetime
import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_memory as mem  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# name: (recipe, max_length, extra --set overrides). One epoch each, so that a run fits a 10-minute device call.
RUNS = {"medqa-1024": ("medqa", 1024, ["max_epochs=1"]),
        "oasst1-2048-eval": ("oasst1", 2048, ["max_epochs=1", "evaluation_freq=100"]),
        # added with v5 (session 17): a run whose evaluation rounds no fit has used
        "msagent-1024": ("msagent", 1024, ["max_epochs=1"])}
CARDS = ("NVIDIA H200", "NVIDIA H100 80GB HBM3")
# plan's launch for one GPU; H200_PRESET=none: without DeepSpeed (the device's packages may lack it)
PRESET = os.environ.get("H200_PRESET", "deepspeed_zero2")
SUFFIX = "" if PRESET == "deepspeed_zero2" else f"-{PRESET}"
VERSION = os.environ.get("H200_ESTIMATE_VERSION", "")  # "-v2": the estimates of a later model, beside the first
VERSIONS = ("", "-v2", "-v3", "-v4", "-v5")
# (run, preset, card) -> the model versions whose fit used that run's median iteration (its estimates were made
# after it): their errors there are in-sample
IN_SAMPLE = {("medqa-1024", "deepspeed_zero2", "NVIDIA H100 80GB HBM3"): ("-v3", "-v4", "-v5"),
             # v5's decode step is fitted to evaluation rounds of these two (fit_time.DECODE_ROUNDS)
             ("medqa-1024", "none", "NVIDIA H200"): ("-v5",), ("oasst1-2048-eval", "deepspeed_zero2", "NVIDIA H200"): ("-v5",)}
STAMP = re.compile(r"^(\d\d/\d\d \d\d:\d\d:\d\d) - mmengine - (\w+) - (.*)$")


def make_config(name: str) -> Path:
    from xtuner_recipes.generate import generate
    from xtuner_recipes.rewrite import parse_override

    recipe, length, extra = RUNS[name]
    sets = [f"max_length={length}", "dataloader_num_workers=2", *extra]
    out = mem.WORK / f"whole-{name}.py"
    result = generate(recipe, str(mem.MODEL), data=str(mem.make_data(recipe)),
                      overrides=[parse_override(s) for s in sets], output=out)
    # every iteration logged: the iterations' time is then the sum of what mmengine logs
    code, count = re.subn(r"(logger=dict\(type=LoggerHook,[^)]*interval=)10\)", r"\g<1>1)", result.code)
    assert count == 1, "the logger's interval was not found in the generated config"
    out.write_text(code)
    return out


def estimate(config: Path, card: str) -> dict:
    """validate's whole-run answer; from v4 on (a model with a host pace) also the iterations' part at each host
    pace of h200_time_check2.AT_PACES (``iterations_at_pace``: [pace, low, high]), which --compare reads at the
    pace the run's host measured: the estimate once ``calibrate`` measured that pace."""
    from h200_time_check2 import AT_PACES

    from xtuner_recipes.validate.estimate import timing
    from xtuner_recipes.validate.inputs import Launch, Options
    from xtuner_recipes.validate.runner import validate_config

    def stats() -> dict:
        return validate_config(str(config), level="full",
                               launch=Launch.from_preset(None if PRESET == "none" else PRESET),
                               options=Options(gpu=card)).stats

    keys = ("run_parts_s", "run_point_s", "run_hours", "run_hours_range", "seconds_per_iter", "seconds_per_iter_range",
            "total_iters", "total_iters_range", "time_card", "time_basis")
    found = {key: value for key, value in stats().items() if key in keys}
    base = timing.load_model()
    if base.get("host_pace_us"):
        original, found["iterations_at_pace"] = timing.load_model, []
        try:
            found["train_at_pace"] = []
            for pace in AT_PACES:
                timing.load_model = lambda pace=pace: dict(base, host_op_us=pace)
                paced = stats()
                found["iterations_at_pace"].append([pace, *paced["run_parts_s"]["iterations"]])
                if paced.get("run_point_s"):  # v5: every part at that pace (evaluation's decoding follows it too)
                    found["train_at_pace"].append([pace, sum(paced["run_point_s"][p] for p in TRAIN_PARTS),
                                                   *(sum(paced["run_parts_s"][p][i] for p in TRAIN_PARTS)
                                                     for i in (0, 1))])
        finally:
            timing.load_model = original
    return found


def estimates(out: Path) -> None:
    mem.make_model(weights=False)
    rows = []
    for name in RUNS:
        config = make_config(name)
        for card in CARDS:
            rows.append({"run": name, "card": card, "date": datetime.date.today().isoformat(), "deepspeed": PRESET,
                         **estimate(config, card)})
    (out / f"h200-whole-run{SUFFIX}-estimate{VERSION}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(json.dumps(rows, indent=1))


def _stamps(log: str) -> list[tuple[float, str]]:
    """(seconds since the epoch, message) of each mmengine log line (this year)."""
    year = datetime.date.today().year
    found = []
    for line in log.splitlines():
        match = STAMP.match(line)
        if match:
            when = datetime.datetime.strptime(f"{year}/{match.group(1)}", "%Y/%m/%d %H:%M:%S")
            found.append((when.timestamp(), match.group(3)))
    return found


def parts_of(log: str, start: float, end: float) -> dict:
    """The measured parts of one training process from its log's timestamps (whole seconds).

    Each EvaluateChatHook round runs from its "in EvaluateChatHook" line to the next line that is not a sample
    (less the one iteration that line logs, at the median iteration); each checkpoint from "Saving checkpoint" to
    the next line; the iterations are the span from the line before the first iteration to the last iteration's
    line, less the rounds and saves inside it. mmengine's logged ``time`` is not summed: it is a mean over a window
    of 10 iterations, and the iteration after a round counts the round (its timer restarts before the hook runs),
    so a sum counts each round a second time (the first end-to-end run's 362.6 s did, by 17 s)."""
    import statistics

    stamps = _stamps(log)
    logged = [float(value) for value in re.findall(r"Iter\(train\).*?\btime: ([\d.]+)", log)]
    step = statistics.median(logged) if logged else 0.0
    rounds, saves = [], []
    for index, (when, message) in enumerate(stamps):
        if message.endswith("in EvaluateChatHook."):
            following = next(((later, text) for later, text in stamps[index + 1:]
                              if not text.startswith("Sample output")), None)
            finish = end if following is None else following[0] - (step if following[1].startswith("Iter(") else 0)
            rounds.append((when, max(finish - when, 0.0)))
        elif message.startswith("Saving checkpoint"):
            saves.append((when, next((later for later, _ in stamps[index + 1:]), end) - when))
    iteration_lines = [index for index, (_, message) in enumerate(stamps) if message.startswith("Iter(train)")]
    iterations = 0.0
    if iteration_lines:
        first, last = stamps[max(iteration_lines[0] - 1, 0)][0], stamps[iteration_lines[-1]][0]
        inside = sum(length for when, length in rounds + saves if first <= when < last)
        iterations = last - first - inside
    load_and_data = (rounds[0][0] if rounds else end) - start
    evaluation, checkpoints = sum(length for _, length in rounds), sum(length for _, length in saves)
    total = end - start
    return {"load_and_data": round(load_and_data, 1), "iterations": round(iterations, 1),
            "iterations_logged": len(logged), "iteration_median_s": round(step, 4),
            "evaluation": round(evaluation, 1), "evaluation_rounds": len(rounds),
            "evaluation_rounds_s": [round(length, 1) for _, length in rounds], "checkpoints": round(checkpoints, 1),
            "other": round(total - load_and_data - iterations - evaluation - checkpoints, 1),
            "train_process": round(total, 1), "train_start": round(start, 1), "train_end": round(end, 1)}


def reparsed(row: dict, log: Path) -> dict:
    """A row measured before parts_of read the timestamps (its start and end not kept): its parts again from its
    train log, the start put where its load_and_data says the first round began and the end train_process later."""
    text = (gzip.open(log, "rt") if log.suffix == ".gz" else open(log)).read()
    first_round = next(when for when, message in _stamps(text) if message.endswith("in EvaluateChatHook."))
    start = first_round - row["load_and_data"]
    return {**row, **parts_of(text, start, start + row["train_process"]), "parts_from": "the log, again"}


def timed(command: list[str], log: Path, env: dict) -> tuple[int, float, float]:
    start = time.time()
    with open(log, "w") as handle:
        status = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    return status, start, time.time()


def measure(name: str, out: Path, keep) -> dict:
    """One run of plan's commands; ``keep(row)`` is called after each step, so that a call cut off at its limit
    still returns the steps it finished. The host's pace is probed before the train process and after it."""
    config = make_config(name)
    work = mem.WORK / "runs" / f"whole-{name}"
    env = dict(os.environ, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=os.environ.get("H200_PORT", "29517"))
    python = sys.executable
    row = {"run": name, "date": datetime.date.today().isoformat(), "deepspeed": PRESET,
           "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF")}
    import torch

    from xtuner_recipes.calibrate_probes import host_op_us, host_sync_us

    row["card"] = torch.cuda.get_device_name(0)
    row["host_op_us"] = host_op_us("cuda")  # this host's pace issuing small ops, for comparing hosts
    row["host_sync_us"] = host_sync_us("cuda")  # and its round trip to the card
    keep(row)
    deepspeed = [] if PRESET == "none" else ["--deepspeed", PRESET]
    status, start, end = timed([python, "-m", "xtuner.tools.train", str(config), *deepspeed,
                                "--work-dir", str(work)], out / f"whole-{name}-train.log", env)
    row["train_status"] = status
    row.update(parts_of((out / f"whole-{name}-train.log").read_text(errors="replace"), start, end))
    row["host_op_us_after"], row["host_sync_us_after"] = host_op_us("cuda"), host_sync_us("cuda")
    keep(row)
    if status != 0:
        return row
    checkpoint = (work / "last_checkpoint").read_text().strip()
    adapter, merged = work / "hf_adapter", work / "merged"
    status, start, end = timed([python, "-m", "xtuner.tools.model_converters.pth_to_hf", str(config), checkpoint,
                                str(adapter)], out / f"whole-{name}-pth_to_hf.log", env)
    row.update(pth_to_hf=round(end - start, 1), pth_to_hf_status=status)
    keep(row)
    status, start, end = timed([python, "-m", "xtuner.tools.model_converters.merge", str(mem.MODEL), str(adapter),
                                str(merged), "--max-shard-size", "2GB"], out / f"whole-{name}-merge.log", env)
    row.update(merge=round(end - start, 1), merge_status=status)
    subprocess.run(["rm", "-rf", str(merged), str(work)])  # 13.5 GB merged: the disk holds one model at a time
    return row


# the parts of the `xtuner train` process, as validate's run_parts_s names them (load and data read as one here)
TRAIN_PARTS = ("load", "data", "iterations", "evaluation", "checkpoints")


def _at_pace(rows: list, pace: float, column: int) -> float:
    """A committed estimate's ``column`` at a host pace: linear between the committed paces (each row's first)."""
    import numpy as np

    return float(np.interp(pace, [row[0] for row in rows], [row[column] for row in rows]))


def _against(answer: float, low: float, high: float, train: float) -> dict:
    """An estimate of the train process (its answer and range) against the measured ``train`` seconds."""
    return {"train_process_s": [round(low, 1), round(high, 1)], "train_process_point_s": round(answer, 1),
            "train_process_error_pct": round(100 * (answer - train) / train, 1),
            "train_process_inside": low <= train <= high}


def compare(results: Path, out: Path) -> None:
    """Each measured run (RESULTS/h200-whole-run*.json) against every estimate committed for its run, card and
    preset (v1, and -v2 for the refitted model): the train process's wall clock against the sum of its parts'
    ranges (the error of the range's middle, and whether the measured value is inside), then each part.
    Written to OUT/h200-whole-run-errors.json."""
    found = []
    for path in sorted(results.glob("h200-whole-run*.json")):
        if "estimate" in path.name or "errors" in path.name:
            continue
        for row in json.loads(path.read_text()):
            suffix = "" if row["deepspeed"] == "deepspeed_zero2" else f"-{row['deepspeed']}"
            log = results / f"h200-whole-run{suffix}-{row['run']}-train.log.gz"
            if "train_start" not in row and log.is_file() and "train_process" in row:
                row = reparsed(row, log)
            if "train_process" not in row:  # cut off before the train process ended: no whole-run row
                continue
            line = {"run": row["run"], "card": row["card"], "deepspeed": row["deepspeed"], "date": row["date"],
                    "parts_from": row.get("parts_from", "the log at the run"),
                    "measured": {"train_process": row["train_process"], "load_and_data": row["load_and_data"],
                                 "iterations": row["iterations"], "evaluation": row["evaluation"],
                                 "checkpoints": row["checkpoints"], "pth_to_hf": row.get("pth_to_hf"),
                                 "merge": row.get("merge")}}
            for version in VERSIONS:
                estimate_path = ROOT / "benchmarks" / "results" / f"h200-whole-run{suffix}-estimate{version}.json"
                if not estimate_path.is_file():
                    continue
                estimate = next((e for e in json.loads(estimate_path.read_text())
                                 if e["run"] == row["run"] and e["card"] == row["card"]), None)
                if estimate is None:
                    continue
                parts = estimate["run_parts_s"]
                low, high = (sum(parts[p][i] for p in TRAIN_PARTS) for i in (0, 1))
                # from v5 on the answer is the point (each part's middle, evaluation at its fast end), before it the
                # range's middle
                point = estimate.get("run_point_s")
                middle = sum(point[p] for p in TRAIN_PARTS) if point else (low + high) / 2
                train = row["train_process"]
                checked = {"in_sample": version in IN_SAMPLE.get((row["run"], row["deepspeed"], row["card"]), ()),
                           **_against(middle, low, high, train)}
                measured_parts = {"load_and_data": row["load_and_data"], "iterations": row["iterations"],
                                  "evaluation": row["evaluation"], "checkpoints": row["checkpoints"],
                                  "pth_to_hf": row.get("pth_to_hf"), "merge": row.get("merge")}
                ranges = {"load_and_data": [parts["load"][i] + parts["data"][i] for i in (0, 1)]} | {
                    name: parts[name] for name in measured_parts if name in parts}
                checked["parts"] = {name: {"estimate_s": [round(v, 1) for v in ranges[name]], "measured_s": value,
                                           "error_pct": round(100 * (sum(ranges[name]) / 2 - value) / value, 1)}
                                    for name, value in measured_parts.items() if value}
                paces = [row[key] for key in ("host_op_us", "host_op_us_after") if row.get(key)]
                pace = sum(paces) / len(paces) if paces else None
                if estimate.get("train_at_pace") and pace:  # v5 read at this run's host pace, every part
                    at = estimate["train_at_pace"]
                    checked["paced"] = {"host_op_us": round(pace, 2),
                                        **_against(*(_at_pace(at, pace, i) for i in (1, 2, 3)), train)}
                elif estimate.get("iterations_at_pace") and pace:  # v4: its iterations read at this run's host pace
                    iterations = [_at_pace(estimate["iterations_at_pace"], pace, i) for i in (1, 2)]
                    low, high = (sum(parts[p][i] for p in TRAIN_PARTS if p != "iterations") + iterations[i]
                                 for i in (0, 1))
                    checked["paced"] = {"host_op_us": round(pace, 2), "iterations_s": [round(v, 1) for v in iterations],
                                        **_against((low + high) / 2, low, high, train)}
                line[f"estimate{version or '-v1'}"] = checked
            found.append(line)
    (out / "h200-whole-run-errors.json").write_text(json.dumps(found, indent=1) + "\n")
    for line in found:
        for version in [f"estimate{v or '-v1'}" for v in VERSIONS]:
            checked = line.get(version)
            if checked:
                print(f"{line['run']} {line['card']} {line['deepspeed']} {version}: train process "
                      f"{line['measured']['train_process']} s, estimated {checked['train_process_s']} "
                      f"({checked['train_process_error_pct']:+.1f}%); " + ", ".join(
                          f"{name} {part['measured_s']} vs {part['estimate_s']}" for name, part in checked["parts"].items())
                      + (f"; at the run's pace {checked['paced']['train_process_s']} "
                         f"({checked['paced']['train_process_error_pct']:+.1f}%)" if "paced" in checked else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimate-only", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS))
    parser.add_argument("--compare", type=Path, metavar="RESULTS",
                        help="no GPU: each measured run in RESULTS against the estimates committed before it")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.compare:
        compare(args.compare, args.out)
        return
    mem.WORK.mkdir(parents=True, exist_ok=True)
    if args.estimate_only:
        estimates(args.out)
        return
    mem.make_model()
    path = args.out / f"h200-whole-run{SUFFIX}.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    for name in args.only or RUNS:
        def keep(row: dict) -> None:
            path.write_text(json.dumps([*rows, row], indent=1) + "\n")

        row = measure(name, args.out, keep)
        rows.append(row)
        keep(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
