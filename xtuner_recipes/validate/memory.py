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

from xtuner_recipes.validate.findings import Finding

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
ALLOCATOR_OVERHEAD = 1.06  # reserved / allocated: PyTorch's caching allocator rounds and fragments
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")  # xtuner: every linear but lm_head


@dataclasses.dataclass(frozen=True)
class Arch:
    """The shape of a decoder-only transformer (Llama, InternLM, InternLM2, Qwen2, Mistral…)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False

    @classmethod
    def from_config(cls, config: dict) -> "Arch | None":
        from xtuner_recipes.model_info import SHAPE_KEYS

        def first(what):
            return next((config[k] for k in SHAPE_KEYS[what] if isinstance(config.get(k), int)), None)

        hidden, layers, heads = first("hidden"), first("layers"), first("heads")
        intermediate, vocab = first("intermediate"), first("vocab")
        if None in (hidden, layers, heads, intermediate, vocab):
            return None
        kv = first("kv_heads") or heads
        return cls(hidden, layers, heads, kv, intermediate, vocab, bool(config.get("tie_word_embeddings", False)))

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear in one layer."""
        kv = self.hidden * self.kv_heads // self.heads
        h, i = self.hidden, self.intermediate
        return {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h), "gate": (h, i), "up": (h, i), "down": (i, h)}

    @property
    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def lora_params(self, r: int) -> int:
        """LoRA's A and B of rank ``r`` on every linear of every layer (xtuner: all but lm_head)."""
        return sum(r * (a + b) for a, b in self.linear_shapes().values()) * self.layers

    @property
    def total_params(self) -> int:
        """Every linear and the embeddings (norms are a rounding error)."""
        return self.layer_linear_params * self.layers + self.embedding_params


@dataclasses.dataclass(frozen=True)
class Run:
    """The settings of one training run that decide its memory."""

    max_length: int
    batch_size: int = 1
    quantization: str = "nf4"  # nf4 | int8 | none
    lora_r: int | None = 64  # None: full fine-tuning
    activation_checkpointing: bool = True
    optimizer_state_bytes: int = 8  # AdamW: exp_avg and exp_avg_sq in fp32
    zero_stage: int = 0
    gpus: int = 1
    offload: tuple[bool, bool] = (False, False)  # DeepSpeed's (optimizer states, parameters) on the CPU


@dataclasses.dataclass(frozen=True)
class Estimate:
    parts: dict  # GiB per term, of both moments that can be the peak
    peak_allocated_gib: float
    peak_gib: float  # reserved: what the card must hold
    peak_parts: dict = dataclasses.field(default_factory=dict)  # GiB alive at the peak (+ allocator overhead)


def estimate(arch: Arch, run: Run) -> Estimate:
    """Peak memory on one GPU for ``run`` on a model of shape ``arch``."""
    tokens = run.batch_size * run.max_length
    linear = arch.layer_linear_params * arch.layers
    weight_bytes = {"nf4": NF4_BYTES, "int8": INT8_BYTES, "none": 4}[run.quantization]
    # Unquantized weights: prepare_model_for_kbit_training casts every fp16/bf16 parameter that
    # is not 4-bit to fp32 — embeddings and lm_head always, the whole model without quantization.
    if run.lora_r is None:
        trainable = linear + arch.embedding_params
        weights = trainable * 2  # full fine-tuning keeps the load dtype; AMP master copies not modelled
    else:
        trainable = arch.lora_params(run.lora_r)
        weights = linear * weight_bytes + arch.embedding_params * 4
    shards = run.gpus if run.zero_stage else 1
    trainable_param_bytes = trainable * 4 / (shards if run.zero_stage >= 3 else 1)
    grads = trainable * 4 / (shards if run.zero_stage >= 2 else 1)
    optimizer = trainable * run.optimizer_state_bytes / (shards if run.zero_stage >= 1 else 1)
    # AMP (fp16 autocast) keeps an fp16 copy of each trainable weight for the step's backward,
    # and lm_head's weight in fp16, saved by its matmul for the backward.
    amp_copies = trainable * 2 + arch.vocab * arch.hidden * 2
    checkpoints = arch.layers * tokens * arch.hidden * 4 if run.activation_checkpointing else 0
    one_layer = tokens * (LAYER_BYTES_PER_HIDDEN * arch.hidden + LAYER_BYTES_PER_INTERMEDIATE * arch.intermediate)
    layers_live = one_layer * BACKWARD_WORKSPACE if run.activation_checkpointing else one_layer * arch.layers
    logits = tokens * arch.vocab * LOGITS_BYTES
    # A recomputed layer's backward: the fp16 copies its unquantized weights are cast to, or the
    # largest weight bitsandbytes dequantizes at a time.
    h, i = arch.hidden, arch.intermediate
    layer_weights = arch.layer_linear_params * 2 if run.quantization == "none" else h * i * 2
    if run.zero_stage >= 1 and run.lora_r is not None:
        from xtuner_recipes.validate import memory_deepspeed

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


def check_config(ctx) -> tuple[list["Finding"], dict]:
    """The estimate for the loaded config (needs the model's config.json and an integer max_length)."""
    max_length = ctx.max_length()
    if ctx.model_config is None or not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        return [], {}
    run = run_from_config(ctx.raw, max_length=max_length, gpus=ctx.gpus(), zero_stage=ctx.options.zero_stage,
                          offload=ctx.options.offload)
    longest = ctx.longest_sample
    if isinstance(longest, int) and 0 < longest < max_length:
        # xtuner pads a batch to its longest sample: the data can't make a longer batch than its longest.
        sampled = " among the --sample rows" if ctx.options.sample else ""
        real = dataclasses.replace(run, max_length=longest)
        stats, findings = check(ctx.model_config, real, gpu_mem=ctx.options.gpu_mem,
                                bound=f"the longest sample{sampled} ({longest} tokens)")
        bound_stats, bound_findings = check(ctx.model_config, run, gpu_mem=ctx.options.gpu_mem,
                                            bound=f"max_length ({max_length} tokens)")
        if "estimated_peak_gib" in bound_stats:
            stats["estimated_peak_gib_at_max_length"] = bound_stats["estimated_peak_gib"]
        if bound_findings and not findings:
            found = bound_findings[0]
            findings.append(Finding("G002", "warning", found.message + f"; the data fits: its longest sample{sampled} "
                                    f"({longest} tokens) gives {stats['estimated_peak_gib']:.1f} GiB, so longer data "
                                    "would not", key="max_length", hint=found.hint))
        return findings + _fragmentation(ctx), stats
    stats, findings = check(ctx.model_config, run, gpu_mem=ctx.options.gpu_mem, bound=f"max_length ({max_length} tokens)")
    return findings + _fragmentation(ctx), stats


def _fragmentation(ctx) -> list[Finding]:
    """Batches padded to their own longest sample change shape every step; PyTorch's default caching
    allocator then fragments. On the H200 (BENCHMARKS.md, 2026-11-29) an unpacked MS-Agent run whose
    allocated peak was 28.8 GiB reserved 52.8 GiB, and ran out of memory under a 32 GiB cap; with
    expandable segments it reserved 29.3–30.2 GiB, within 5% of this estimate, and ran under the cap."""
    import os

    if not ctx.padded_batches or "expandable_segments:true" in os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "").lower():
        return []
    return [Finding("G003", "warning", "batches are padded to their own longest sample, so their shape changes every "
                    "step: PyTorch's default allocator fragments, and the run can need far more than the estimate "
                    "(measured: 28.8 GiB allocated, 52.8 GiB reserved; out of memory under a 32 GiB cap)",
                    key="pack_to_max_length",
                    hint="export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before `xtuner train` (measured "
                         "within 5% of the estimate), or pack_to_max_length=True")]


def run_from_config(get, *, max_length: int, gpus: int, zero_stage: int,
                    offload: tuple[bool, bool] = (False, False)) -> Run:
    """The ``Run`` a loaded config describes; ``get(key)`` reads a dotted setting."""
    quantization = get("model.llm.quantization_config")
    if not isinstance(quantization, dict):
        kind = "none"
    elif quantization.get("load_in_4bit"):
        kind = "nf4"
    elif quantization.get("load_in_8bit"):
        kind = "int8"
    else:
        kind = "none"
    lora = get("model.lora")
    from xtuner_recipes.validate.leaves import type_name

    # The optimizer's name, not the optimizer: importing bitsandbytes.optim may fail here.
    name = (type_name(get("optim_wrapper.optimizer.type")) or "").lower()
    state_bytes = 8 if "adam" in name else 4 if "sgd" in name else 8
    checkpointing = get("model.use_activation_checkpointing")
    batch_size = get("train_dataloader.batch_size")
    return Run(max_length=max_length, batch_size=batch_size if isinstance(batch_size, int) and batch_size > 0 else 1,
               quantization=kind, lora_r=lora.get("r", 8) if isinstance(lora, dict) else None,
               activation_checkpointing=True if checkpointing is None else bool(checkpointing),
               optimizer_state_bytes=state_bytes, zero_stage=zero_stage, gpus=gpus, offload=offload)


def card_gib() -> float | None:
    """The memory of this machine's first CUDA GPU, in GiB, or None."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / GIB
    except Exception:  # noqa: BLE001 - no usable GPU is simply no card to check against
        return None
    return None


def check(config_json: dict | None, run: Run | None, *, gpu_mem: float | None, bound: str | None = None):
    """``(stats, findings)``: the estimate and its parts; G001 when it exceeds the card.
    ``bound`` says which sequence length the estimate is taken at."""
    arch = Arch.from_config(config_json) if config_json else None
    if arch is None or run is None:
        return {}, []
    result = estimate(arch, run)
    stats = {"estimated_peak_gib": result.peak_gib, "estimated_memory_gib": result.parts,
             "estimated_peak_parts_gib": result.peak_parts}
    if bound:
        stats["memory_bound"] = bound
    card, source = (gpu_mem, "--gpu-mem") if gpu_mem else (card_gib(), "this machine's GPU")
    findings = []
    if card:
        stats["gpu_mem_gib"] = round(card, 2)
        if result.peak_gib > card:
            largest = max(result.parts, key=result.parts.get)
            findings.append(Finding(
                "G001", "error",
                f"estimated peak GPU memory {result.peak_gib:.1f} GiB" + (f" at {bound}" if bound else "") +
                f" exceeds {card:.1f} GiB ({source}); "
                f"largest part: {largest} {result.parts[largest]:.1f} GiB",
                key="max_length", hint="lower max_length or batch_size, keep 4-bit quantization and activation "
                                       "checkpointing, or shard with --deepspeed deepspeed_zero2/3 over more GPUs"))
    return stats, findings
