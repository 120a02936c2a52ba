"""How long the training iterations take, from a model fitted to xtuner runs measured on the H200.

Seconds an iteration = ``a[quantization] + stage[zero] + b[quantization] * tokens + c * sequences * length**2``
where a batch is ``sequences`` samples padded to ``length`` tokens (packed samples are ``max_length``
long; unpacked batches pad to their longest sample, so the expectation is taken over random batches
of the data's real lengths). The coefficients live in ``h200_time_model.json``, written by
``benchmarks/gpu/h200_time.py --fit`` (the least squares of ``benchmarks/gpu/fit_time.py``) from the
measured runs, together with the domain they were
measured on: outside it (another model shape, card count, quantization or ZeRO stage) no time is
given, rather than a guess. ``shown`` lists the quantizations whose check run (shapes the fit never
saw, ``checked``) came within 15%: 4-bit QLoRA; 16-bit LoRA missed (-17.7%) and is not shown.

    >>> model = {"a": {"nf4": 0.1}, "b": {"nf4": 1e-4}, "c": 0.0, "stage": {"0": 0.0}}
    >>> round(per_iteration(model, "nf4", 0, sequences=1, length=2048), 4)
    0.3048
"""

import json
from pathlib import Path

MODEL_PATH = Path(__file__).with_name("h200_time_model.json")


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
