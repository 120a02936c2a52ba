"""Peak GPU memory per GPU for an xtuner LoRA/QLoRA run, from ``config.json`` and the config's settings.

A model, not a measurement: every term is a count of bytes that xtuner 0.2.0, peft and
transformers 4.48 keep alive at the two moments that can be the peak, with the
assumptions written next to each term. The H200 section of BENCHMARKS.md compares it with
``torch.cuda.max_memory_reserved`` (11 runs, all within 5.3%).

    >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    >>> round(estimate(arch, Run(max_length=2048)).peak_gib, 1)
    14.3
"""

import dataclasses

from xtuner_recipes.validate.estimate.arch import Arch

GIB = 1024 ** 3
# bitsandbytes NF4 with double quantization: 4 bits a weight, an 8-bit absmax per block of 64,
# and a float32 absmax per 256 of those blocks.
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
INT8_BYTES = 1 + 4 / 4096  # LLM.int8: a byte a weight and a float32 scale per row of ~4096
# Saved for backward per token of one decoder layer when it is recomputed (activation
# checkpointing), in bytes per hidden unit and per intermediate unit. Counted from the
# tensors autograd keeps: the fp32 residual stream and norms (prepare_model_for_kbit_training
# casts norms and embeddings to fp32), the fp16 inputs each quantized linear saves, LoRA's
# dropout outputs and masks (one per target module), RoPE's fp32 q/k, attention in and out,
# and the MLP's gate, up, activation and product.
LAYER_BYTES_PER_HIDDEN = 100
LAYER_BYTES_PER_INTERMEDIATE = 12
BACKWARD_WORKSPACE = 1.25  # gradients of a layer's activations live next to its saved tensors
# Bytes per token per vocabulary entry at the loss: fp16 logits, their fp32 copy
# (``logits.float()``), the shifted contiguous copy and log_softmax's fp32 output.
LOGITS_BYTES = 2 + 4 + 4 + 4
# A mixture-of-experts layer runs its MLP once a routed expert a token visits (and once more for a shared
# expert): each pass saves its own copy of the token's hidden state, LoRA's dropout outputs and masks on the
# gate and up projections, the expert's output and its routing-weighted product (2 + 2 x 3 + 2 + 2 bytes a
# hidden unit), beside the router's fp32 logits and softmax and its int64 one-hot mask (experts x top-k).
ROUTED_BYTES_PER_HIDDEN = 12
ALLOCATOR_OVERHEAD = 1.06  # reserved / allocated: PyTorch's caching allocator rounds and fragments
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")  # xtuner: every linear but lm_head
# What a card must hold beyond the estimate for "fits": the worst under-estimate against every GPU peak measured
# (benchmarks/results/, in-sample rows too, and issue #26's held-out LoRA r=16 row) is ZeRO-2 at 512 tokens on one
# H200, 11.61 GiB measured for 10.77 estimated: the card needs the estimate x 1.078. Unpacked batches under
# PyTorch's default allocator are not covered (52.8 GiB for 30.8): G003 says so. tests/test_memory_margin.py
# recomputes it from the rows.
FIT_MARGIN = 0.08


@dataclasses.dataclass(frozen=True)
class Run:
    """The settings of one training run that decide its memory."""

    max_length: int
    batch_size: int = 1
    quantization: str = "nf4"  # nf4 | int8 | none
    lora_r: int | None = 64  # None: full fine-tuning
    lora_targets: tuple | str | None = None  # peft's target_modules; None: xtuner's every linear but lm_head
    activation_checkpointing: bool = True
    optimizer_state_bytes: int = 8  # AdamW: exp_avg and exp_avg_sq in fp32
    zero_stage: int = 0
    gpus: int = 1
    offload: tuple[bool, bool] = (False, False)  # DeepSpeed's (optimizer states, parameters) on the CPU
    nodes: int = 1
    accumulate: int = 1  # optim_wrapper.accumulative_counts: iterations an optimizer step

    @classmethod
    def of(cls, settings, launch) -> "Run":
        """The run a config's ``Settings`` describe under ``launch``; ``max_length`` 0 when the config's is
        no positive whole number (then no GPU estimate or time is made)."""
        from xtuner_recipes.validate.data.leaves import type_name
        from xtuner_recipes.values import is_positive_int

        quantization = settings.quantization_config
        if not isinstance(quantization, dict):
            kind = "none"
        elif quantization.get("load_in_4bit"):
            kind = "nf4"
        elif quantization.get("load_in_8bit"):
            kind = "int8"
        else:
            kind = "none"
        lora = settings.lora
        targets = lora.get("target_modules") if isinstance(lora, dict) else None
        targets = tuple(targets) if isinstance(targets, (list, tuple, set)) else targets if isinstance(targets, str) \
            else None
        # The optimizer's name, not the optimizer: importing bitsandbytes.optim may fail here.
        name = (type_name(settings.optimizer_type) or "").lower()
        state_bytes = 8 if "adam" in name else 4 if "sgd" in name else 8
        checkpointing = settings.activation_checkpointing
        batch_size = settings.batch_size
        return cls(max_length=settings.max_length if is_positive_int(settings.max_length) else 0,
                   batch_size=batch_size if is_positive_int(batch_size) else 1,
                   quantization=kind, lora_r=lora.get("r", 8) if isinstance(lora, dict) else None,
                   lora_targets=targets,
                   activation_checkpointing=True if checkpointing is None else bool(checkpointing),
                   optimizer_state_bytes=state_bytes, zero_stage=launch.stage, gpus=launch.gpu_count(),
                   offload=launch.offload, nodes=max(1, launch.nodes),
                   accumulate=settings.accumulative_counts if is_positive_int(settings.accumulative_counts) else 1)


@dataclasses.dataclass(frozen=True)
class Estimate:
    parts: dict  # GiB per term, of both moments that can be the peak
    peak_allocated_gib: float
    peak_gib: float  # reserved: what the card must hold
    peak_parts: dict = dataclasses.field(default_factory=dict)  # GiB alive at the peak (+ allocator overhead)


def estimate(arch: Arch, run: Run) -> Estimate:
    """Peak memory on one GPU for ``run`` on a model of shape ``arch``."""
    tokens = run.batch_size * run.max_length
    linear = arch.linear_params
    weight_bytes = {"nf4": NF4_BYTES, "int8": INT8_BYTES, "none": 4}[run.quantization]
    # Unquantized weights: prepare_model_for_kbit_training casts every fp16/bf16 parameter that
    # is not 4-bit to fp32 — embeddings and lm_head always, the whole model without quantization.
    if run.lora_r is None:
        trainable = linear + arch.embedding_params + arch.other_params
        weights = trainable * 2  # full fine-tuning keeps the load dtype; AMP master copies not modelled
    else:
        trainable = arch.lora_params(run.lora_r, run.lora_targets)
        weights = linear * weight_bytes + (arch.embedding_params + arch.other_params) * 4
    shards = run.gpus if run.zero_stage else 1
    trainable_param_bytes = trainable * 4 / (shards if run.zero_stage >= 3 else 1)
    grads = trainable * 4 / (shards if run.zero_stage >= 2 else 1)
    optimizer = trainable * run.optimizer_state_bytes / (shards if run.zero_stage >= 1 else 1)
    # AMP (fp16 autocast) keeps an fp16 copy of each trainable weight for the step's backward,
    # and lm_head's weight in fp16, saved by its matmul for the backward.
    amp_copies = trainable * 2 + arch.vocab * arch.hidden * 2
    checkpoints = arch.layers * tokens * arch.hidden * 4 if run.activation_checkpointing else 0
    one_layer = tokens * (LAYER_BYTES_PER_HIDDEN * arch.hidden + LAYER_BYTES_PER_INTERMEDIATE * arch.active_intermediate
                          + _routing_bytes(arch))
    layers_live = one_layer * BACKWARD_WORKSPACE if run.activation_checkpointing else one_layer * arch.layers
    logits = tokens * arch.vocab * LOGITS_BYTES
    # A recomputed layer's backward: the fp16 copies its unquantized weights are cast to, or the
    # largest weight bitsandbytes dequantizes at a time.
    layer_weights = arch.layer_linear_params * 2 if run.quantization == "none" else arch.largest_linear * 2
    if run.zero_stage >= 1 and run.lora_r is not None:
        from xtuner_recipes.validate.estimate import deepspeed as memory_deepspeed

        at_loss_parts, in_layer_parts, parts = memory_deepspeed.estimate(
            arch, run, weight_bytes=weight_bytes, tokens=tokens, trainable=trainable, layers_live=layers_live,
            layer_weights=layer_weights, logits=logits)
        return _finish(parts, at_loss_parts, in_layer_parts, memory_deepspeed.allocator_overhead(run))
    base = {"weights": weights, "lora_params": trainable_param_bytes, "gradients": grads, "optimizer_states": optimizer,
            "activation_checkpoints": checkpoints}
    at_loss = base | {"amp_weight_copies": amp_copies, "logits_and_loss": logits}
    in_layers = base | {"amp_weight_copies": trainable * 2, "layer_recompute": layers_live + layer_weights}
    parts = base | {"layer_recompute": layers_live + layer_weights, "amp_weight_copies": amp_copies,
                    "logits_and_loss": logits}
    return _finish(parts, at_loss, in_layers, ALLOCATOR_OVERHEAD)


def _routing_bytes(arch: Arch) -> float:
    """Bytes a token adds to one mixture-of-experts layer past a dense one (``ROUTED_BYTES_PER_HIDDEN``)."""
    if not arch.moe:
        return 0.0
    shared = any("shared" in group.path for group in arch.all_linears())
    passes = arch.top_k - 1 + (1 if shared else 0)
    return passes * ROUTED_BYTES_PER_HIDDEN * arch.hidden + arch.experts * (4 + 4 + 8 * arch.top_k)


def _finish(parts: dict, at_loss: dict, in_layers: dict, overhead: float) -> Estimate:
    """The larger of the two moments is the peak; reserved = allocated x the allocator's overhead."""
    peak_parts = max(at_loss, in_layers, key=lambda moment: sum(moment.values()))
    peak = sum(peak_parts.values())
    at_peak = dict(peak_parts, allocator_overhead=peak * (overhead - 1))
    return Estimate(
        parts={name: round(value / GIB, 3) for name, value in parts.items()},
        peak_allocated_gib=round(peak / GIB, 3),
        peak_gib=round(peak * overhead / GIB, 3),
        peak_parts={name: round(value / GIB, 3) for name, value in at_peak.items() if value},
    )


def fit_verdict(peak_gib: float, card_gib: float) -> tuple[str, float]:
    """``("fits", spare GiB)`` when the card holds the estimate and its margin, ``("tight", spare)`` when it holds
    the estimate but not the margin (the run may still run out), ``("does not fit", GiB short)``.

        >>> fit_verdict(14.3, 24), fit_verdict(14.3, 15), fit_verdict(14.3, 12)
        (('fits', 9.7), ('tight', 0.7), ('does not fit', 2.3))
    """
    if peak_gib > card_gib:
        return "does not fit", round(peak_gib - card_gib, 1)
    return ("fits" if peak_gib * (1 + FIT_MARGIN) <= card_gib else "tight"), round(card_gib - peak_gib, 1)


def card_gib() -> float | None:
    """The memory of this machine's first CUDA GPU, in GiB, or None."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / GIB
    except Exception:  # noqa: BLE001 - no usable GPU is simply no card to check against
        return None
    return None




def card_name() -> str | None:
    """The name of this machine's first CUDA GPU, or None."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - no usable GPU is simply no card to name
        return None
    return None
