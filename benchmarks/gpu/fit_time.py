"""The time model's fit (``xtuner_recipes/validate/estimate/timing.py``) over the measured rows, kept with them;
the runtime package only reads what this writes (``xtuner_recipes/validate/estimate/time_model.json``).

    python benchmarks/gpu/fit_time.py            # rewrite time_model.json from benchmarks/results/

Rows (all in-sample; the ``HELD_OUT`` configs' runs are not rows: their errors against the v4 estimates committed
before them are kept as ``held_out``):

- ``h200-time.json``: internlm-chat-7b's shape on the H200, 4-bit and 16-bit LoRA r=64, packed and unpacked,
  ZeRO-2; a ``fit`` row's point is mmengine's logged mean of iterations 4–13 (before the first optimizer step),
  a ``check`` row's the mean of its iterations after the warmup, each against the batch shapes of those
  iterations;
- ``h200-moe.json`` and ``h200-moe-qwen.json``: OLMoE-1B-7B's and Qwen1.5-MoE-A2.7B's shapes on an H100 (the
  H200's tensor throughput, less bandwidth), 4-bit, packed; the point is the median logged iteration time;
- ``h200-time-check2.json`` (since 2026-12-07): the first held-out check's runs on an H100 (Llama-2-7B,
  Llama-3-8B, Qwen2-7B and OLMoE shapes), each run's median iteration against its batch shapes; runs that
  logged only mmengine's windowed means, or batches not the config's, are left out;
- ``h200-whole-run-medqa-1024-train.log.gz``: the first end-to-end run's iterations (plan's commands under
  ZeRO-2, on an H100), their median;
- ``h200-time-check3.json``: the second held-out check's runs of its first 8 configs (v3's held-out check), each
  run's median iteration, with the host's pace calibrate's probe read after it.

The model (``timing.combine``, v4): an iteration takes about the longer of the card's work (FLOPs over a
throughput a quantization, plus the dequantizing bytes over the bandwidth, not fitted) and the host's (a cost a
linear call a quantization, a routed expert's call, ZeRO-2's hooks a trained tensor, a padded batch's mask a
layer, a cost an iteration), the host's scaled by the row's host pace over a reference pace (a row without a
pace ran at it). Fitted by least squares of the relative error (scipy, six starts) for each reference pace of
``PACES`` and each combination of ``SMOOTH`` (the maximum, or an n-norm of the two sides); the least cost is kept.
A constant's rows are the rows on the binding side that use it.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
SKIP = 3  # warmup iterations left out of every measured mean
# The second check's configs not yet run when this model (v4) was fitted: its held-out check, estimates committed
# in h200-time-check3-estimate-v4.json before their runs.
HELD_OUT = ("qwen2-packed4096-16bit", "qwen2-msagent-b4-r64", "olmoe-packed1024-b2-r32", "olmoe-uniform-b2-r16")
PACES = [5.0 + 0.25 * i for i in range(29)]  # the reference host paces tried, µs an op
SMOOTH = (None, 8, 4, 2)  # the combinations tried: the maximum, and n-norms
WINDOW = 10  # mmengine's LogProcessor logs the mean of the last 10 iterations' times
SEVEN_B = dict(model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, intermediate_size=11008, vocab_size=103168, max_position_embeddings=2048)
OLMOE = dict(model_type="olmoe", hidden_size=2048, intermediate_size=1024, num_hidden_layers=16,
             num_attention_heads=16, num_key_value_heads=16, vocab_size=50304, num_experts=64, num_experts_per_tok=8,
             max_position_embeddings=4096, tie_word_embeddings=False)
QWEN_MOE = dict(model_type="qwen2_moe", hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                shared_expert_intermediate_size=5632, num_hidden_layers=24, num_attention_heads=16,
                num_key_value_heads=16, vocab_size=151936, num_experts=60, num_experts_per_tok=4,
                max_position_embeddings=8192, tie_word_embeddings=False)


def points() -> list[dict]:
    """Every measured row as (name, card, arch config, run, [(sequences, length)], seconds)."""
    from xtuner_recipes.validate.estimate.gpu import Run

    found = []
    for row in json.loads((RESULTS / "h200-time.json").read_text()):
        stage = int(row["deepspeed"][-1]) if row.get("deepspeed") else 0
        window = row["iterations"][:WINDOW] if row["phase"] == "fit" else row["iterations"]
        seconds = window[-1]["seconds"] if row["phase"] == "fit" else row["mean_seconds"]
        found.append({"name": row["name"], "file": "h200-time.json", "card": "NVIDIA H200", "config": SEVEN_B,
                      "run": Run(max_length=row["max_length"], quantization=row["quantization"], zero_stage=stage),
                      "shapes": [(i["sequences"], i["length"]) for i in window], "seconds": seconds,
                      "causal": True if row["pack"] else None})  # packed: no mask; else a padded batch has one
    for row in json.loads((RESULTS / "h200-moe.json").read_text()):
        found.append({"name": f"olmoe-{row['recipe']}-{row['max_length']}", "file": "h200-moe.json",
                      "card": row["card"], "config": OLMOE,
                      "run": Run(max_length=row["max_length"], quantization=row["quantization"]),
                      "shapes": [(1, row["max_length"])], "seconds": row["max_length"] / row["tokens_per_s"],
                      "causal": True})
    for row in json.loads((RESULTS / "h200-moe-qwen.json").read_text()):
        if "median_iteration_s" not in row:  # the memory runs of 2026-12-07 (8 iterations, one log for two runs)
            continue
        found.append({"name": f"qwen-moe-{row['recipe']}-{row['max_length']}", "file": "h200-moe-qwen.json",
                      "card": row["card"], "config": QWEN_MOE,
                      "run": Run(max_length=row["max_length"], quantization=row["quantization"]),
                      "shapes": [(1, row["max_length"])], "seconds": row["median_iteration_s"], "causal": True})
    found += checked_rows() + whole_run_rows() + second_check_rows()
    return found


def _check2():
    """benchmarks/gpu/h200_time_check2.py, for its configs (``RUNS``, ``RUNS3``, ``SHAPES``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("check2", Path(__file__).with_name("h200_time_check2.py"))
    check2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check2)
    return check2


def checked_rows() -> list[dict]:
    """The held-out check's runs (``h200-time-check2.json``) that logged every iteration and ran the config's
    batches: each run's median iteration against its batch shapes."""
    check2 = _check2()
    committed = {row["name"]: row["estimate"] for row in
                 json.loads((RESULTS / "h200-time-check2-estimate.json").read_text())}
    found = []
    for row in json.loads((RESULTS / "h200-time-check2.json").read_text()):
        run = next(r for r in check2.RUNS if r[0] == row["name"])
        if row.get("windowed", True) or not row.get("iterations") or check2._not_the_estimates(row, run,
                                                                                                committed[run[0]]):
            continue
        found.append(_check_row(row, run, "h200-time-check2.json"))
    return found


def _check_row(row: dict, run: tuple, file: str) -> dict:
    """A held-out check's run as a row: its median iteration against its batch shapes (``RUNS``' tuple ``run``)."""
    import statistics

    from xtuner_recipes.validate.estimate.gpu import Run

    return {"name": f"{row['name']}-{row['attempt']}", "file": file, "card": row["card"],
            "config": _check2().SHAPES[run[1]],
            "run": Run(max_length=run[4], batch_size=run[6], quantization=run[5], lora_r=run[9],
                       zero_stage=2 if run[8] else 0),
            "shapes": [(i["sequences"], i["length"]) for i in row["iterations"]],
            "seconds": statistics.median(i["seconds"] for i in row["iterations"]), "causal": True if run[7] else None}


def second_check_rows() -> list[dict]:
    """The second held-out check's runs (``h200-time-check3.json``) of the configs the v3 model was checked on
    before this fit (all but ``HELD_OUT``): each run's median iteration against its batch shapes, and the host's
    pace calibrate's probe measured after it (``pace``)."""
    check2 = _check2()
    found = []
    for row in json.loads((RESULTS / "h200-time-check3.json").read_text()):
        if row["name"] in HELD_OUT or not row.get("iterations"):
            continue
        run = next(r for r in check2.RUNS3 if r[0] == row["name"])
        found.append(_check_row(row, run, "h200-time-check3.json") | {"pace": row.get("host_op_us")})
    return found


def whole_run_rows() -> list[dict]:
    """The end-to-end runs' iterations (each train log's logged times after the warmup), their median."""
    import gzip
    import re
    import statistics

    from xtuner_recipes.validate.estimate.gpu import Run

    found = []
    for row in json.loads((RESULTS / "h200-whole-run.json").read_text()):
        log = RESULTS / f"h200-whole-run-{row['run']}-train.log.gz"
        if row["run"] != "medqa-1024" or not log.is_file():
            continue
        times = [float(t) for t in re.findall(r"Iter\(train\).*?\btime: ([\d.]+)",
                                              gzip.decompress(log.read_bytes()).decode(errors="replace"))]
        found.append({"name": f"whole-run-{row['run']}", "file": log.name, "card": row["card"], "config": SEVEN_B,
                      "run": Run(max_length=1024, quantization="nf4", zero_stage=2 if row["deepspeed"] else 0),
                      "shapes": [(1, 1024)], "seconds": statistics.median(times[SKIP:]), "causal": True})
    return found


def columns(point: dict, reference: float) -> tuple[dict, float]:
    """The row's coefficient of each constant (means over its iterations), and the card's seconds not fitted (the
    dequantizing). A row that recorded the host's pace has its host columns scaled by it over ``reference`` (the
    pace the host constants hold at; a row without one ran at it)."""
    from xtuner_recipes.validate.estimate import cards, timing
    from xtuner_recipes.validate.estimate.count import arch_of

    arch, _ = arch_of(point["config"])
    run, card = point["run"], cards.find(point["card"])
    measured = cards.find("NVIDIA H200")
    quantization = run.quantization
    passes = 3 if run.activation_checkpointing else 2
    line = {f"flop.{quantization}": 0.0, f"call.{quantization}": 0.0, "expert_call": 0.0, "mask": 0.0}
    fixed = 0.0
    for sequences, length in point["shapes"]:
        share = 1 / len(point["shapes"])
        work = timing.work(arch, run, sequences=sequences, length=length, causal=point["causal"])
        line[f"flop.{quantization}"] += work * measured.tflops / card.tflops * share
        linear_calls, expert_calls = timing.calls(arch, run, sequences=sequences, length=length)
        line[f"call.{quantization}"] += linear_calls * share
        line["expert_call"] += expert_calls * share
        if not point["causal"] and sequences > 1:  # a padded batch: transformers builds and applies its mask
            line["mask"] += arch.layers * passes * share
        model = {"card": "NVIDIA H200", "flops_per_s": {quantization: 1.0}, "seconds_per_call": {quantization: 0.0},
                 "seconds_per_expert_call": 0.0, "stage": {}}
        fixed += timing.parts(model, arch, run, sequences=sequences, length=length, card=card)["dequantize"] * share
    if run.zero_stage:
        line[f"stage.{run.zero_stage}"] = float(timing.trained_tensors(arch, run))
    line["one"] = 1.0
    if point.get("pace"):
        line = {name: value * (1.0 if name.startswith(CARD_SIDE) else point["pace"] / reference)
                for name, value in line.items()}
    return line, fixed


CARD_SIDE = "flop."  # the card's constants; every other column is the host's


def solve(found: list[dict], reference: float, smooth: int | None) -> dict:
    """The constants for one reference pace and one way of combining the sides: least squares of the relative
    error (scipy), from several starts (a grid of a call's and an iteration's host cost), the best kept."""
    import numpy as np
    from scipy.optimize import least_squares

    lines = [columns(p, reference) for p in found]
    names = sorted({name for line, _ in lines for name in line})
    matrix = np.array([[line.get(name, 0.0) for name in names] for line, _ in lines])
    fixed = np.array([fixed for _, fixed in lines])
    seconds = np.array([p["seconds"] for p in found])
    card_side = np.array([name.startswith(CARD_SIDE) for name in names])
    scale = np.where(card_side, 1e-15, 1e-4)  # seconds a FLOP, seconds a call: solved at one scale

    def sides(x):
        return matrix[:, card_side] @ x[card_side] + fixed, matrix[:, ~card_side] @ x[~card_side]

    def combined(x):
        card, host = sides(x)
        return np.maximum(card, host) if smooth is None else (card ** smooth + host ** smooth) ** (1 / smooth)

    def relative(z):
        return (combined(z * scale) - seconds) / seconds

    tries = [np.array([4.0 if name.startswith(CARD_SIDE) else one if name == "one" else call for name in names])
             for call in (1.0, 3.0) for one in (100.0, 300.0, 1000.0)]
    best = min((least_squares(relative, z, bounds=(0, np.inf)) for z in tries), key=lambda r: r.cost)
    x = best.x * scale
    card, host = sides(x)
    return {"cost": float(best.cost), "names": names, "value": dict(zip(names, x.tolist())), "lines": lines,
            "predicted": combined(x), "host_bound": host > card, "reference": reference, "smooth": smooth}


def fit(paces=PACES, smooth=SMOOTH) -> dict:
    """The constants of the best fit over the grid of reference paces and combinations (least cost)."""
    found = points()
    best = min((solve(found, reference, power) for power in smooth for reference in paces), key=lambda f: f["cost"])
    value, names, lines = best["value"], best["names"], best["lines"]
    residuals = [round(100 * (f - p["seconds"]) / p["seconds"], 1) for f, p in zip(best["predicted"], found)]
    quantizations = sorted(name.split(".")[1] for name in names if name.startswith("flop."))

    def behind(name):
        side = ~best["host_bound"] if name.startswith(CARD_SIDE) else best["host_bound"]
        return int(sum(1 for row, line in zip(side, lines) if row and line[0].get(name)))

    seen = [p["pace"] for p in found if p.get("pace")]
    return {
        "card": "NVIDIA H200",
        "overlap": True,
        "smooth": best["smooth"],
        "stage_per_tensor": True,
        "host_pace_us": best["reference"],
        "host_pace_range_us": [min(seen), max(seen)],
        "fit_cost": best["cost"],
        "flops_per_s": {q: 1 / value[f"flop.{q}"] for q in quantizations},
        "seconds_per_call": {q: value[f"call.{q}"] for q in quantizations},
        "seconds_per_expert_call": value["expert_call"],
        "seconds_per_iteration": {q: value["one"] for q in quantizations},
        "seconds_per_masked_layer": value["mask"],
        "stage": {"0": 0.0} | {name.split(".")[1]: value[name] for name in names if name.startswith("stage.")},
        "fitted_on": [{"name": p["name"], "file": p["file"], "card": p["card"], "seconds": round(p["seconds"], 4),
                       "bound": "host" if h else "card", "residual_pct": r}
                      | ({"host_op_us": p["pace"]} if p.get("pace") else {})
                      for p, r, h in zip(found, residuals, best["host_bound"])],
        "rows_behind": {name: behind(name) for name in names} | {"decode_call": len(DECODE_ROUNDS)},
        "residual_pct": {family: [min(r for p, r in zip(found, residuals) if _family(p) == family),
                                  max(r for p, r in zip(found, residuals) if _family(p) == family)]
                         for family in ("dense", "moe")},
        "held_out": held_out(),
        "before": previous_held_out(),
    } | decode_fit(best["reference"])


# EvaluateChatHook rounds of the end-to-end runs whose new tokens are known: (train log, the round's place among the
# log's rounds, generations in it, new tokens each, the host's pace that run's probe read (before and after its
# train process, their mean), what the count rests on). The random model's replies do not stop (its ids beyond the
# tokenizer's vocabulary decode to nothing, no stop word comes): before training each generation makes its 50
# tokens; after training the oasst1 run's replies (a few bytes of text) are taken at max_new_tokens, their most, so
# these two rows are a lower bound of a token's time. The before-training rounds carry the process's first generate.
DECODE_ROUNDS = [
    ("h200-whole-run-oasst1-2048-eval-train-cut.log.gz", 0, 2, 50, 10.87, "before training: 50 tokens"),
    ("h200-whole-run-oasst1-2048-eval-train-cut.log.gz", 1, 2, 600, 10.87, "after 100 iterations: at most 600"),
    ("h200-whole-run-oasst1-2048-eval-train-cut.log.gz", 2, 2, 600, 10.87, "after 200 iterations: at most 600"),
    ("h200-whole-run-none-medqa-1024-train.log.gz", 0, 1, 50, 10.375, "before training: 50 tokens"),
]


def decode_rows(reference: float) -> list[dict]:
    """Each DECODE_ROUNDS round as a token's seconds and the cost of a linear call at the ``reference`` pace: the
    token less the weights read at the H200's bandwidth (4-bit), over internlm-chat-7b's linear calls and the
    host's pace over the reference (as ``wholerun.decode_step`` reads it back)."""
    import gzip

    sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
    import h200_whole_run as whole

    from xtuner_recipes.validate.estimate import cards, wholerun
    from xtuner_recipes.validate.estimate.count import arch_of
    from xtuner_recipes.validate.estimate.gpu import Run

    arch = arch_of(SEVEN_B)[0]
    calls = sum(group.count for group in arch.all_linears())
    # the weights read alone: decode_step with no cost a call
    weights = wholerun.decode_step({"decode_seconds_per_call": 0.0}, arch, Run(max_length=2048, quantization="nf4"),
                                   cards.find("NVIDIA H200"))
    rows = []
    for name, index, generations, tokens, pace, what in DECODE_ROUNDS:
        text = gzip.open(RESULTS / name, "rt").read()
        stamps = whole._stamps(text)
        seconds = whole.parts_of(text, stamps[0][0], stamps[-1][0])["evaluation_rounds_s"][index]
        token = seconds / (generations * tokens)
        rows.append({"file": name, "round": index, "what": what, "seconds": seconds, "new_tokens": generations * tokens,
                     "host_op_us": pace, "seconds_per_token": round(token, 4),
                     "seconds_per_call": (token - weights) / calls / (pace / reference)})
    return rows


def decode_fit(reference: float) -> dict:
    """The table's decode cost a linear call at the reference pace: the median of the DECODE_ROUNDS rows."""
    import statistics

    rows = decode_rows(reference)
    return {"decode_seconds_per_call": statistics.median(row["seconds_per_call"] for row in rows),
            "decode_rows": [{**row, "seconds_per_call": round(row["seconds_per_call"], 7)} for row in rows]}


def held_out() -> list[dict]:
    """This model's held-out check so far: the ``HELD_OUT`` configs' medians over their runs against the v4
    estimates committed before them (``h200_time_check2.py --set 3 --compare``: ``error_v4_pct`` at the
    reference pace, ``error_v4_paced_pct`` at each run's measured pace); none of their runs is a row above."""
    path = RESULTS / "h200-time-check3-errors.json"
    if not path.is_file():
        return []
    check2 = _check2()
    shapes = {run[0]: check2.SHAPES[run[1]] for run in check2.RUNS3}
    return [{"name": row["name"], "card": row["card"], "runs": row["runs"], "measured_s": row["measured_s"],
             "estimate_s": row["estimate_v4_s"], "error_pct": row["error_v4_pct"],
             "paced_estimate_s": row.get("estimate_v4_paced_s"), "paced_error_pct": row.get("error_v4_paced_pct"),
             "family": _family({"config": shapes[row["name"]]}), "host_op_us": row.get("host_op_us")}
            for row in json.loads(path.read_text())["rows"]
            if "excluded" not in row and row["name"] in HELD_OUT and "error_v4_pct" in row]


def previous_held_out() -> dict | None:
    """What the model before this one (v3: the longer of the card's and the host's work, refitted 2026-12-07)
    missed on the second check's configs (``h200_time_check2.py --set 3 --compare``), eight of which this fit
    then used: kept as its record."""
    path = RESULTS / "h200-time-check3-errors.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    rows = [row for row in report["rows"] if "excluded" not in row]
    paces = [pace for row in rows for pace in row.get("host_op_us") or ()]
    return {"model": "v3 (the longer of the card's and the host's work)", "configs": len(rows),
            "card": sorted({row["card"] for row in rows}),
            "error_pct": [min(row["error_pct"] for row in rows), max(row["error_pct"] for row in rows)],
            "median_abs_pct": report["table"]["median_abs_pct"],
            "host_op_us": [min(paces), max(paces)] if paces else None}


def _family(point: dict) -> str:
    from xtuner_recipes.validate.estimate.count import arch_of

    return "moe" if arch_of(point["config"])[0].moe else "dense"


if __name__ == "__main__":
    from xtuner_recipes.validate.estimate import timing

    model = fit()
    timing.MODEL_PATH.write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps({k: v for k, v in model.items() if k != "fitted_on"}, indent=1))
    for row in model["fitted_on"]:
        print(f"{row['name']:32} {row['card']:24} {row['seconds']:8.3f} s  {row['bound']:4}  {row['residual_pct']:+.1f}%")
