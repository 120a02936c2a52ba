"""How long a training iteration takes: the work, counted from the model, over what a card does a second, and
what the host does meanwhile.

The card's part (``GPU_PARTS``):

- ``compute``: the iteration's FLOPs (``flops.iteration``: the model's real linears, experts by top-k, attention,
  ``lm_head``, LoRA, the recompute) over an achieved throughput a quantization (``flops_per_s``, fitted);
- ``dequantize``: a 4-bit weight is unpacked to 16 bits every time it is used (forward, recompute, backward):
  ``DEQUANT_BYTES`` a weight over the card's memory bandwidth.

The host's part (``HOST_PARTS``), the Python and kernel launches that run ahead of the card:

- ``calls``: a fixed cost a linear layer's call (launches, LoRA's dropout and adds; ``seconds_per_call``,
  fitted), and more a routed expert's call (``seconds_per_expert_call``, fitted);
- ``deepspeed``: the ZeRO stage's hooks, a cost a trained tensor an iteration (``stage``, fitted; a model
  without ``stage_per_tensor`` counts it an iteration);
- ``fixed``: what an iteration costs whatever its layers (the loss, the step's Python; ``seconds_per_iteration``);
- ``mask``: a padded batch's attention mask, a cost a layer a pass (``seconds_per_masked_layer``, fitted).

The host's part is the host's own speed times those counts: the constants hold at ``host_pace_us`` (calibrate's
probe, µs to issue one small op, ``calibrate_probes.host_op_us``), and a model given this machine's pace
(``host_op_us``, what calibrate measured here) scales the host's part by it. The same card's iterations ran 1.8x
slower on one host than another when the host set the pace (BENCHMARKS.md, 2026-12-07).

CUDA runs the card's work while the host launches the next, so an iteration takes about the longer of the two
(``combine``: the maximum, or with ``smooth`` n the n-norm of the two, as the sides stall each other when close;
a model with ``overlap`` false — calibrate's, solved as a sum — adds them). Then ``exchange``, on
several GPUs: the gradients' all-reduce over the cards' link or the network (modelled from the table's
bandwidths, not measured: no several-GPU run here has been timed).

The constants live in ``time_model.json``, written by ``benchmarks/gpu/fit_time.py`` from the raw rows in
``benchmarks/results/`` (which rows, and the fit's residuals, are in the file and BENCHMARKS.md). On another
card in ``cards.CARDS`` the compute scales by its tensor throughput and the dequantizing by its bandwidth (the
H200's efficiencies carried over); the per-call costs stay: that answer is "scaled from the H200, not measured
on this card".

    >>> from xtuner_recipes.validate.estimate.arch import Arch
    >>> from xtuner_recipes.validate.estimate.gpu import Run
    >>> model = {"flops_per_s": {"nf4": 2e14}, "seconds_per_call": {"nf4": 1e-4}, "seconds_per_expert_call": 0.0,
    ...          "stage": {"0": 0.0}, "card": "NVIDIA H200", "overlap": True}
    >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    >>> found = parts(model, arch, Run(max_length=2048), sequences=1, length=2048)
    >>> {k: round(v, 3) for k, v in found.items()}
    {'compute': 0.45, 'dequantize': 0.018, 'calls': 0.067, 'deepspeed': 0.0}
    >>> round(combine(model, found), 3)  # the card's 0.468 s hides the host's 0.067 s
    0.468
"""

import json
from pathlib import Path

from xtuner_recipes.validate.estimate import cards, flops

MODEL_PATH = Path(__file__).with_name("time_model.json")
GPU_PARTS = ("compute", "dequantize")
HOST_PARTS = ("calls", "deepspeed", "fixed", "mask")
# Bytes of memory traffic a 4-bit weight costs each time it is dequantized: its half byte and scales read, 16
# bits written, and those 16 bits read again by the matmul.
DEQUANT_BYTES = 0.5 + 2 + 2


def load_model() -> dict | None:
    try:
        return json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def calls(arch, run, *, sequences, length) -> tuple[float, float]:
    """(linear calls, routed-expert calls) an iteration: forward, recompute and backward (two passes without
    activation checkpointing). An expert is called when at least one token of the batch picks it."""
    passes = 3 if run.activation_checkpointing else 2
    plain = sum(g.count for g in arch.all_linears() if not g.routed)
    routed_linears = sum(g.count for g in arch.all_linears() if g.routed)
    if not routed_linears:
        return plain * passes, 0.0
    picked = 1 - (1 - arch.top_k / arch.experts) ** (sequences * length)  # the share of experts some token picks
    experts = routed_linears / sum(1 for g in arch.all_linears() if g.routed)  # an expert's linears: one group each
    return (plain + routed_linears * picked) * passes, experts * picked * passes


def work(arch, run, *, sequences, length, causal: bool | None = None):
    """The FLOPs an iteration executes: ``flops.iteration`` (torch's count), less the masked half of attention
    when the batch needs no mask (``causal``; default: one sequence), which SDPA's causal kernel skips."""
    done = flops.iteration(arch, sequences=sequences, length=length, lora_r=run.lora_r,
                           target_modules=run.lora_targets, checkpointing=run.activation_checkpointing)
    if (sequences == 1) if causal is None else causal:
        done = done - flops.causal_skipped(arch, sequences=sequences, length=length,
                                           checkpointing=run.activation_checkpointing)
    return done


def parts(model: dict, arch, run, *, sequences, length, card: cards.Card | None = None,
          causal: bool | None = None) -> dict:
    """Seconds of one iteration of ``sequences`` samples padded to ``length``, by part (numbers or numpy arrays).
    ``causal``: the batch needs no attention mask (packed, or one sequence: the default), so SDPA's causal kernel
    skips the masked half of attention (``flops.causal_skipped``); a padded batch computes the square."""
    measured = measured_card(model)
    card = card or measured
    quantization = run.quantization
    compute = work(arch, run, sequences=sequences, length=length, causal=causal) / model["flops_per_s"][quantization] * measured.tflops / card.tflops
    linear_calls, expert_calls = calls(arch, run, sequences=sequences, length=length)
    passes = 3 if run.activation_checkpointing else 2
    dequantize = 0.0
    if quantization in ("nf4", "int8"):
        dequantize = arch.linear_params * passes * DEQUANT_BYTES / (card.bandwidth_gbs * 1e9)
    found = {"compute": compute, "dequantize": dequantize,
             "calls": linear_calls * model["seconds_per_call"][quantization]
             + expert_calls * model["seconds_per_expert_call"],
             "deepspeed": model["stage"].get(str(run.zero_stage), 0.0) * (trained_tensors(arch, run)
                                                                          if model.get("stage_per_tensor") else 1)}
    fixed = (model.get("seconds_per_iteration") or {}).get(quantization)
    if fixed is not None:  # what an iteration costs the host whatever its layers (the fit's, or calibrate's)
        found["fixed"] = fixed
    if model.get("seconds_per_masked_layer") and not ((sequences == 1) if causal is None else causal):
        found["mask"] = model["seconds_per_masked_layer"] * arch.layers * passes
    pace = host_pace(model)
    if pace != 1.0:
        for name in HOST_PARTS:
            if name in found:
                found[name] = found[name] * pace
    if run.gpus > 1:
        found["exchange"] = exchange(arch, run, card)
    return found


def host_pace(model: dict) -> float:
    """How much slower this host issues work than the host the constants hold for: the pace calibrate measured
    here (``host_op_us``) over the fit's reference (``host_pace_us``); 1 when either is unknown."""
    reference, here = model.get("host_pace_us"), model.get("host_op_us")
    return here / reference if reference and here else 1.0


def sides(found: dict) -> tuple:
    """(the card's seconds, the host's seconds) of an iteration's ``parts``."""
    return (sum(found.get(name, 0.0) for name in GPU_PARTS), sum(found.get(name, 0.0) for name in HOST_PARTS))


def combine(model: dict, found: dict):
    """An iteration's seconds from its ``parts``: about the longer of the card's and the host's (they overlap: the
    maximum, or the ``smooth`` n-norm), then the exchange between cards; the plain sum for a model without
    ``overlap``."""
    import numpy as np

    if not model.get("overlap"):
        return sum(found.values())
    card, host = sides(found)
    if model.get("smooth"):
        power = model["smooth"]
        pace = (card ** power + host ** power) ** (1 / power)
    else:
        pace = np.maximum(card, host) if isinstance(card, np.ndarray) or isinstance(host, np.ndarray) else max(card, host)
    return pace + sum(v for k, v in found.items() if k not in GPU_PARTS + HOST_PARTS)


def bound(model: dict, found: dict) -> str | None:
    """``"host"`` when the host's part sets an iteration's pace (a model with ``overlap``), else ``"card"``."""
    if not model.get("overlap"):
        return None
    card, host = sides(found)
    return "host" if host > card else "card"


def trained_tensors(arch, run) -> int:
    """The tensors an optimizer trains: LoRA's A and B on each adapted linear (ZeRO's hooks run once each)."""
    return 2 * sum(group.count for group in arch.targets(run.lora_targets)) if run.lora_r is not None else 0


def exchange(arch, run, card) -> float:
    """Seconds an iteration spends exchanging gradients between ``run.gpus`` GPUs (modelled, not measured): a ring
    all-reduce moves 2(n-1)/n of the gradients' bytes over the slowest link, the card's within a machine or the
    network between machines. DeepSpeed's ZeRO-2 reduces every iteration, in 16 bits; mmengine's DDP once an
    optimizer step (``no_sync`` while it accumulates), in the fp32 of the trained weights."""
    trained = arch.total_params if run.lora_r is None else arch.lora_params(run.lora_r, run.lora_targets)
    deepspeed = run.zero_stage >= 1
    size = trained * (2 if deepspeed else 4)
    link = card.link_gbs if run.nodes <= 1 else min(card.link_gbs, cards.NETWORK_GBS)
    seconds = 2 * (run.gpus - 1) / run.gpus * size / (link * 1e9)
    return seconds if deepspeed else seconds / max(1, run.accumulate)


def held_out_paces(model: dict | None) -> tuple[float, float] | None:
    """The lowest and highest host pace (calibrate's probe, µs to issue one small op) the model's held-out runs
    recorded, or None where none did."""
    paces = [pace for row in (model or {}).get("held_out") or [] for pace in row.get("host_op_us") or ()]
    return (min(paces), max(paces)) if paces else None


def pace_range(model: dict) -> tuple[float, float] | None:
    """The fastest and slowest host paces the model's runs saw (its rows' and its held-out runs'), or None for a
    model without a reference pace."""
    seen = [*(model.get("host_pace_range_us") or ()), *(held_out_paces(model) or ())]
    return (min(seen), max(seen)) if seen and model.get("host_pace_us") else None


def held_out_words(model: dict) -> str:
    """What the fit's held-out check says so far, in words, and the record of the model before it."""
    import statistics

    held = model.get("held_out") or []
    found = (f"held out so far: {len(held)} configs on {' and '.join(sorted({row['card'] for row in held}))}, missed "
             f"by {min(r['error_pct'] for r in held):+.1f}% to {max(r['error_pct'] for r in held):+.1f}% (median "
             f"{statistics.median(abs(r['error_pct']) for r in held):.1f}%; the range covers these misses too)" if held
             else "all in-sample; no held-out check yet")
    before = model.get("before")
    if before:
        found += (f"; the model before it missed {before['configs']} held-out configs by {before['error_pct'][0]:+.1f}% "
                  f"to {before['error_pct'][1]:+.1f}% (median {before['median_abs_pct']}%), and this one is fitted "
                  f"to the runs made before it")
    return found


def measured_cards(model: dict) -> list[str]:
    """The cards the model's constants were measured on: the fit's rows' (its ``card`` first), or the one
    ``calibrate`` measured. A time on any other card is scaled from them."""
    if model.get("calibrated"):
        return [model["card"]]
    return list(dict.fromkeys([model["card"], *(row["card"] for row in model.get("fitted_on", []))]))


def scaled_words(measured: list[str]) -> str:
    """What a time on a card outside ``measured`` (``measured_cards``) rests on: validate's, the report's and
    doctor's words."""
    return f"scaled from the {' and '.join(measured)}, not measured on this card"


def measured_card(model: dict) -> cards.Card:
    """The card the constants were measured on: the table's, or the one ``calibrate`` described."""
    spec = model.get("card_spec")
    return cards.Card(**spec) if spec else cards.find(model["card"])


def per_iteration(model: dict, arch, run, *, sequences, length, card: cards.Card | None = None,
                  causal: bool | None = None):
    return combine(model, parts(model, arch, run, sequences=sequences, length=length, card=card, causal=causal))


def outside(model: dict, run) -> str | None:
    """Why the measurements don't cover this run, or None when they do."""
    if run.lora_r is None:
        return "measured with LoRA adapters only"
    if run.quantization not in model["flops_per_s"]:
        return f"measured with {' and '.join(sorted(model['flops_per_s']))} only"
    if str(run.zero_stage) not in model["stage"]:
        return f"measured at ZeRO stage {' and '.join(sorted(model['stage']))} only"
    if any(run.offload):
        return "measured without DeepSpeed's CPU offload"
    return None


def expected(model: dict, arch, run, *, sequences: int, lengths, card=None, seed: int = 0) -> float:
    """The mean seconds an iteration over random batches of ``sequences`` samples with these ``lengths`` (each
    batch padded to its longest), as mmengine's shuffling sampler draws them."""
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.float64)

    def seconds(count, padded):
        return per_iteration(model, arch, run, sequences=count, length=padded, card=card)

    if sequences <= 1 or len(lengths) <= sequences:
        padded = np.array([lengths.max()]) if sequences > 1 else lengths
        return float(np.mean(seconds(min(sequences, len(lengths)), padded)))
    rng, rounds = np.random.default_rng(seed), max(1, min(8, 200_000 // len(lengths)))
    means = []
    for _ in range(rounds):
        batches = rng.permutation(lengths)[: len(lengths) // sequences * sequences].reshape(-1, sequences)
        means.append(np.mean(seconds(sequences, batches.max(1))))
    return float(np.mean(means))
