"""How long the training iterations take, from a model fitted to xtuner runs measured on the H200.

Seconds an iteration = ``a[quantization] + stage[zero] + b[quantization] * tokens + c * sequences * length**2``
where a batch is ``sequences`` samples padded to ``length`` tokens (packed samples are ``max_length``
long; unpacked batches pad to their longest sample, so the expectation is taken over random batches
of the data's real lengths). The coefficients live in ``h200_time_model.json``, written by
``benchmarks/gpu/h200_time.py --fit`` from the measured runs, together with the domain they were
measured on: outside it (another model shape, card count, quantization or ZeRO stage) no time is
given, rather than a guess. ``shown`` lists the quantizations whose check run (shapes the fit never
saw, ``checked``) came within 15%: 4-bit QLoRA; 16-bit LoRA missed (-17.7%) and is not shown.

    >>> model = {"a": {"nf4": 0.1}, "b": {"nf4": 1e-4}, "c": 0.0, "stage": {"0": 0.0}}
    >>> round(per_iteration(model, "nf4", 0, sequences=1, length=2048), 4)
    0.3048
"""

import json
from pathlib import Path

from xtuner_recipes.validate.findings import Finding

MODEL_PATH = Path(__file__).with_name("h200_time_model.json")
SKIP = 3  # warmup iterations left out of every measured mean
GOAL_PCT = 15  # a quantization's time is shown when every check run came this close (issue #16)
WINDOW = 10  # mmengine's LogProcessor logs the mean of the last 10 iterations' times


def load_model() -> dict | None:
    try:
        return json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def per_iteration(model: dict, quantization: str, stage: int, *, sequences, length):
    """Seconds for one iteration of ``sequences`` samples padded to ``length`` (numbers or numpy arrays)."""
    tokens = sequences * length
    return (model["a"][quantization] + model["stage"][str(stage)] + model["b"][quantization] * tokens
            + model["c"] * sequences * length ** 2)


def outside(model: dict, *, arch, quantization: str, lora: bool, stage: int, gpus: int, sequences: int,
            length: int, offload: tuple[bool, bool] = (False, False)) -> str | None:
    """Why the measurements don't cover this run, or None when they do."""
    domain = model["domain"]
    shape = {"hidden": arch.hidden, "layers": arch.layers, "intermediate": arch.intermediate}
    if any(shape[k] != domain["arch"][k] for k in shape) or not (
            domain["vocab"][0] <= arch.vocab <= domain["vocab"][1]):
        return f"measured on {domain['model']} only"
    if not lora:
        return "measured with LoRA adapters only"
    if quantization not in model["a"]:
        return f"measured with {' and '.join(sorted(model['a']))} only"
    if quantization not in model["shown"]:
        missed = [f"{c['error_pct']:+.1f}%" for c in model["checked"].values() if c["quantization"] == quantization]
        return (f"the check run with quantization {quantization} missed by {', '.join(missed) or 'an unchecked amount'}"
                " (BENCHMARKS.md), so no time is given for it")
    if str(stage) not in model["stage"]:
        return f"measured at ZeRO stage {' and '.join(sorted(model['stage']))} only"
    if gpus != 1:
        return "measured on one GPU only"
    if any(offload):
        return "measured without DeepSpeed's CPU offload"
    if sequences * length > domain["max_tokens"] or length > domain["max_length"]:
        return (f"batches of {sequences} x {length} tokens are past the measured {domain['max_tokens']} tokens "
                f"({domain['max_length']} a sample)")
    return None


def expected(model: dict, quantization: str, stage: int, *, sequences: int, lengths, seed: int = 0) -> float:
    """The mean seconds an iteration over random batches of ``sequences`` samples with these
    ``lengths`` (each batch padded to its longest), as mmengine's shuffling sampler draws them."""
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.float64)
    if sequences <= 1 or len(lengths) <= sequences:
        padded = np.array([lengths.max()]) if sequences > 1 else lengths
        return float(np.mean(per_iteration(model, quantization, stage, sequences=min(sequences, len(lengths)),
                                           length=padded)))
    rng, rounds = np.random.default_rng(seed), max(1, min(8, 200_000 // len(lengths)))
    means = []
    for _ in range(rounds):
        batches = rng.permutation(lengths)[: len(lengths) // sequences * sequences].reshape(-1, sequences)
        means.append(np.mean(per_iteration(model, quantization, stage, sequences=sequences, length=batches.max(1))))
    return float(np.mean(means))


def fit(rows: list[dict]) -> dict:
    """Least squares over the ``phase == "fit"`` rows of ``benchmarks/gpu/h200_time.py``; the ``check``
    rows (estimates committed before they ran) give ``checked``, and ``shown`` the quantizations whose
    every check came within ``GOAL_PCT``.

    Each run gives one point: mmengine logs the mean of the last ``WINDOW`` iterations, so the value
    logged at iteration ``SKIP + WINDOW`` is the mean of iterations ``SKIP+1 .. SKIP+WINDOW`` —
    after the warmup, and before the first optimizer step (every 16 iterations in these configs),
    whose first call allocates the paged optimizer's state.
    """
    import numpy as np

    points = [r for r in rows if r.get("phase") == "fit" and r.get("iterations")]
    quants = sorted({r["quantization"] for r in points})
    stages = sorted({_stage(r) for r in points} - {0})
    columns = [f"a.{q}" for q in quants] + [f"b.{q}" for q in quants] + ["c"] + [f"stage.{s}" for s in stages]
    matrix, target, tokens = [], [], []
    for row in points:
        window = row["iterations"][:WINDOW]
        sequences = float(np.mean([i["sequences"] for i in window]))
        length = float(np.mean([i["length"] for i in window]))
        line = dict.fromkeys(columns, 0.0)
        line[f"a.{row['quantization']}"] = 1.0
        line[f"b.{row['quantization']}"] = sequences * length
        line["c"] = sequences * length ** 2
        if _stage(row):
            line[f"stage.{_stage(row)}"] = 1.0
        matrix.append([line[c] for c in columns])
        tokens.append(sequences * length)
        target.append(window[-1]["seconds"])
    checked = {r["name"]: {"quantization": r["quantization"], "error_pct": r["error_pct"]}
               for r in rows if r.get("phase") == "check" and r.get("error_pct") is not None}
    solution, *_ = np.linalg.lstsq(np.array(matrix), np.array(target), rcond=None)
    value = dict(zip(columns, solution.tolist()))
    fitted = np.array(matrix) @ solution
    residuals = [round(100 * (f - t) / t, 1) for f, t in zip(fitted, target)]
    return {
        "a": {q: round(value[f"a.{q}"], 5) for q in quants},
        "b": {q: value[f"b.{q}"] for q in quants},
        "c": value["c"],
        "stage": {"0": 0.0} | {str(s): round(value[f"stage.{s}"], 5) for s in stages},
        "domain": {"model": "internlm-chat-7b's shape (a random Llama stand-in), LoRA r=64, activation checkpointing",
                   "card": "NVIDIA H200", "arch": {"hidden": 4096, "layers": 32, "intermediate": 11008},
                   "vocab": [80000, 130000], "max_tokens": int(max(tokens) * 1.25),
                   "max_length": 2048},
        "fitted_on": [{"name": r["name"], "date": r["date"], "residual_pct": e} for r, e in zip(points, residuals)],
        "checked": checked,
        "shown": [q for q in quants if any(c["quantization"] == q for c in checked.values())
                  and all(abs(c["error_pct"]) <= GOAL_PCT for c in checked.values() if c["quantization"] == q)],
    }


def _stage(row) -> int:
    preset = row.get("deepspeed") or ""
    return int(preset[-1]) if preset[-1:].isdigit() else 0


def check(ctx) -> tuple[list[Finding], dict]:
    """Seconds an iteration and hours of training on the measured card, or why none is given."""
    from xtuner_recipes.validate.memory import Arch, run_from_config

    model, total = load_model(), ctx.total_iters
    max_length = ctx.max_length()
    if model is None or not total or ctx.model_config is None or not isinstance(max_length, int):
        return [], {}
    arch = Arch.from_config(ctx.model_config)
    run = run_from_config(ctx.raw, max_length=max_length, gpus=ctx.gpus(), zero_stage=ctx.options.zero_stage,
                          offload=ctx.options.offload)
    if arch is None:
        return [], {}
    packed = not ctx.padded_batches
    lengths = ctx.sample_lengths
    if not packed and lengths is None:
        return [], {"time_basis": "not estimated: the samples' lengths were not counted"}
    longest = max_length if packed else int(max(lengths))
    why = outside(model, arch=arch, quantization=run.quantization, lora=run.lora_r is not None,
                  stage=run.zero_stage, gpus=run.gpus, sequences=run.batch_size, length=longest, offload=run.offload)
    card = model["domain"]["card"]
    if why:
        return [], {"time_basis": f"not estimated: {why} (on an {card})"}
    if packed:
        seconds = float(per_iteration(model, run.quantization, run.zero_stage, sequences=run.batch_size,
                                      length=max_length))
    else:
        seconds = expected(model, run.quantization, run.zero_stage, sequences=run.batch_size, lengths=lengths)
    checked = [f"{c['error_pct']:+.1f}%" for c in model["checked"].values() if c["quantization"] in model["shown"]]
    return [], {"seconds_per_iter": round(seconds, 3), "train_hours": round(seconds * total / 3600, 2),
                "time_card": card,
                "time_basis": f"iterations only (no model load, evaluation or checkpoints), fitted to "
                              f"{len(model['fitted_on'])} runs on one {card}; off by {', '.join(checked)} on "
                              f"{len(checked)} runs the fit never saw (BENCHMARKS.md)"}
