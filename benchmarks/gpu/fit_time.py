"""The time model's fit (``xtuner_recipes/validate/estimate/timing.py``) over the measured rows, kept with them;
the runtime package only reads what this writes (``xtuner_recipes/validate/estimate/time_model.json``).

    python benchmarks/gpu/fit_time.py            # rewrite time_model.json from benchmarks/results/

Rows (all in-sample: every row measured so far is used, none is held out):

- ``h200-time.json``: internlm-chat-7b's shape on the H200, 4-bit and 16-bit LoRA r=64, packed and unpacked,
  ZeRO-2; a ``fit`` row's point is mmengine's logged mean of iterations 4–13 (before the first optimizer step),
  a ``check`` row's the mean of its iterations after the warmup, each against the batch shapes of those
  iterations;
- ``h200-moe.json`` and ``h200-moe-qwen.json``: OLMoE-1B-7B's and Qwen1.5-MoE-A2.7B's shapes on an H100 (the
  H200's tensor throughput, less bandwidth), 4-bit, packed; the point is the median logged iteration time.

Weighted least squares (relative error) for six constants: an achieved throughput a quantization, a cost a
linear call a quantization, a cost a routed expert's call, ZeRO-2's cost an iteration. The dequantizing traffic
is not fitted: it is bytes over the card's bandwidth (``timing.DEQUANT_BYTES``).
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
SKIP = 3  # warmup iterations left out of every measured mean
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
    return found


def columns(point: dict) -> tuple[dict, float]:
    """The row's coefficient of each constant (means over its iterations), and the seconds not fitted."""
    from xtuner_recipes.validate.estimate import cards, timing
    from xtuner_recipes.validate.estimate.count import arch_of

    arch, _ = arch_of(point["config"])
    run, card = point["run"], cards.find(point["card"])
    measured = cards.find("NVIDIA H200")
    quantization = run.quantization
    line = {f"flop.{quantization}": 0.0, f"call.{quantization}": 0.0, "expert_call": 0.0}
    fixed = 0.0
    for sequences, length in point["shapes"]:
        work = timing.work(arch, run, sequences=sequences, length=length, causal=point["causal"])
        line[f"flop.{quantization}"] += work * measured.tflops / card.tflops / len(point["shapes"])
        linear_calls, expert_calls = timing.calls(arch, run, sequences=sequences, length=length)
        line[f"call.{quantization}"] += linear_calls / len(point["shapes"])
        line["expert_call"] += expert_calls / len(point["shapes"])
        model = {"card": "NVIDIA H200", "flops_per_s": {quantization: 1.0}, "seconds_per_call": {quantization: 0.0},
                 "seconds_per_expert_call": 0.0, "stage": {}}
        fixed += timing.parts(model, arch, run, sequences=sequences, length=length, card=card)["dequantize"] / len(
            point["shapes"])
    if run.zero_stage:
        line[f"stage.{run.zero_stage}"] = 1.0
    return line, fixed


def fit() -> dict:
    import numpy as np

    found = points()
    lines = [columns(p) for p in found]
    names = sorted({name for line, _ in lines for name in line})
    matrix = np.array([[line.get(name, 0.0) for name in names] for line, _ in lines])
    target = np.array([p["seconds"] - fixed for p, (_, fixed) in zip(found, lines)])
    weights = 1 / np.array([p["seconds"] for p in found])
    solution, *_ = np.linalg.lstsq(matrix * weights[:, None], target * weights, rcond=None)
    value = dict(zip(names, solution.tolist()))
    predicted = matrix @ solution + np.array([fixed for _, fixed in lines])
    residuals = [round(100 * (f - p["seconds"]) / p["seconds"], 1) for f, p in zip(predicted, found)]
    quantizations = sorted(name.split(".")[1] for name in names if name.startswith("flop."))
    return {
        "card": "NVIDIA H200",
        "flops_per_s": {q: 1 / value[f"flop.{q}"] for q in quantizations},
        "seconds_per_call": {q: value[f"call.{q}"] for q in quantizations},
        "seconds_per_expert_call": value["expert_call"],
        "stage": {"0": 0.0} | {name.split(".")[1]: value[name] for name in names if name.startswith("stage.")},
        "fitted_on": [{"name": p["name"], "file": p["file"], "card": p["card"], "seconds": round(p["seconds"], 4),
                       "residual_pct": r} for p, r in zip(found, residuals)],
        "rows_behind": {"flops_per_s.nf4 and seconds_per_call.nf4": sum(p["run"].quantization == "nf4" for p in found),
                        "flops_per_s.none and seconds_per_call.none": sum(p["run"].quantization == "none" for p in found),
                        "seconds_per_expert_call": sum(p["file"].startswith("h200-moe") for p in found),
                        "stage.2": sum(p["run"].zero_stage == 2 for p in found)},
        "residual_pct": {family: [min(r for p, r in zip(found, residuals) if _family(p) == family),
                                  max(r for p, r in zip(found, residuals) if _family(p) == family)]
                         for family in ("dense", "moe")},
        "held_out": held_out(),
    }


def held_out() -> list[dict]:
    """The held-out check's configs so far (``h200_time_check2.py --compare``), against this model's estimates
    committed before their runs (``-v2``); the runs left out there (batches not the estimate's) are left out here."""
    path = RESULTS / "h200-time-check2-errors.json"
    if not path.is_file():
        return []
    return [{"name": row["name"], "card": row["card"], "runs": row["runs"], "seconds": row["measured_s"],
             "estimate": row["estimate_v2_s"], "error_pct": row["error_v2_pct"]}
            for row in json.loads(path.read_text())["rows"] if "excluded" not in row]


def _family(point: dict) -> str:
    return "moe" if point["file"].startswith("h200-moe") else "dense"


if __name__ == "__main__":
    from xtuner_recipes.validate.estimate import timing

    model = fit()
    timing.MODEL_PATH.write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps({k: v for k, v in model.items() if k != "fitted_on"}, indent=1))
    for row in model["fitted_on"]:
        print(f"{row['name']:28} {row['card']:24} {row['seconds']:8.3f} s  {row['residual_pct']:+.1f}%")
