"""The time model's least-squares fit over the H200 runs (``benchmarks/results/h200-time.json``), kept with the
measurements; the runtime package only reads what it writes (``xtuner_recipes/validate/estimate/h200_time_model.json``).

``python benchmarks/gpu/h200_time.py --fit benchmarks/results/h200-time.json`` rewrites the model;
``tests/test_report.py`` holds the committed model to this fit of the committed rows.
"""

GOAL_PCT = 15  # a quantization's time is shown when every check run came this close (issue #16)
SKIP = 3  # warmup iterations left out of every measured mean
WINDOW = 10  # mmengine's LogProcessor logs the mean of the last 10 iterations' times


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
