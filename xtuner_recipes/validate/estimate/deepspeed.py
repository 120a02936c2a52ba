"""Peak GPU memory of a LoRA/QLoRA run under DeepSpeed ZeRO, as xtuner 0.2.0 launches it with its presets.

What changes against plain AMP (``gpu.estimate``), from DeepSpeed 0.16's engine and ZeRO optimizers:
- the engine casts the whole module to 16 bits (xtuner's presets: bf16 or fp16 "auto"): embeddings,
  lm_head and the LoRA weights are 2 bytes, not the fp32 peft's ``prepare_model_for_kbit_training``
  left; there is no autocast, so no fp16 copies, and the residual stream saved at each checkpointed
  layer is 2 bytes a unit;
- the optimizer keeps an fp32 master copy of the trainable weights beside AdamW's two states, each
  sharded over the GPUs (stage ≥ 1); fp32 gradients exist only at the step;
- gradient buckets of DeepSpeed's default ``reduce_bucket_size`` (5e8 elements, 16-bit): two with
  ``overlap_comm`` (every xtuner preset sets it) at stages 1–2, one at stage 3;
- ZeRO-3 shards every weight over the GPUs — 4-bit ones too: xtuner's ``_prepare_for_qlora_zero3``
  stores them in 16-bit containers (``bnb_4bit_quant_storage``) so that ZeRO-3 can. On one GPU a
  gathered weight is its own partition, and one layer's weights are counted as gathered. On several,
  gathered weights are full copies beside the partitions, and DeepSpeed keeps them until they are more
  than ``stage3_max_live_parameters`` (1e9 elements, which no xtuner preset changes) or will not be used
  again within ``stage3_max_reuse_distance`` (also 1e9): with activation checkpointing the last layers run
  forward come back first in backward, so about 1e9 elements stay gathered (16-bit: 1.86 GiB);

- offload (``deepspeed_zero2_offload``, ``deepspeed_zero3_offload``): the master weights and optimizer
  states live on the CPU (``host_memory`` counts them there); with parameter offload (ZeRO-3) the weights
  too, the GPU holding the layer being run and, at the loss, ``lm_head``. Optimizer offload measured
  (``deepspeed_zero2_offload``, +8.1%); parameter offload not.
The H200 rows it was built from and the check of it are in BENCHMARKS.md.
"""

BUCKET_ELEMENTS = 5e8
MAX_LIVE_ELEMENTS = 1e9  # DeepSpeed's stage3_max_live_parameters and stage3_max_reuse_distance defaults
HALF = 2
ALLOCATOR_OVERHEAD = 1.14  # reserved / allocated under DeepSpeed: 1.09–1.19 over five H200 runs
# ZeRO-3 on several GPUs: gathered copies are allocated and freed every layer, and the cache holds more:
# 12.13 GiB reserved for 9.40 allocated on two H200s (one run, oasst1 at 2048; checked on two others).
ALLOCATOR_OVERHEAD_GATHERING = 1.29


def allocator_overhead(run) -> float:
    """reserved / allocated for ``run``: larger when ZeRO-3 gathers weights from other GPUs."""
    return ALLOCATOR_OVERHEAD_GATHERING if run.zero_stage >= 3 and run.gpus > 1 and not run.offload[1] \
        else ALLOCATOR_OVERHEAD


def estimate(arch, run, *, weight_bytes: float, tokens: int, trainable: int, layers_live: float,
             layer_weights: float, logits: float):
    """``(parts_at_loss, parts_in_layers, all_parts)`` in bytes, for ``gpu.estimate`` to finish."""
    shards = run.gpus
    linear = arch.linear_params
    quantized = run.quantization in ("nf4", "int8")
    per_weight = weight_bytes if quantized else HALF
    offload_optimizer, offload_param = run.offload
    if offload_param:
        weights = arch.layer_linear_params * per_weight + arch.vocab * arch.hidden * HALF
    elif run.zero_stage >= 3:
        partitioned = linear * per_weight + (arch.embedding_params + arch.other_params) * HALF + trainable * HALF
        gathered = arch.layer_linear_params * per_weight if shards == 1 else \
            min(MAX_LIVE_ELEMENTS * HALF, partitioned)
        weights = (linear * per_weight + (arch.embedding_params + arch.other_params) * HALF) / shards + gathered
    else:
        weights = linear * per_weight + (arch.embedding_params + arch.other_params) * HALF
    lora = 0 if offload_param else trainable * HALF / (shards if run.zero_stage >= 3 else 1)
    master = 0 if offload_optimizer else trainable * 4 / shards
    optimizer = 0 if offload_optimizer else trainable * run.optimizer_state_bytes / shards
    buckets = BUCKET_ELEMENTS * HALF * (1 if run.zero_stage >= 3 else 2)
    checkpoints = arch.layers * tokens * arch.hidden * HALF if run.activation_checkpointing else 0
    base = {"weights": weights, "lora_params": lora, "master_weights": master, "optimizer_states": optimizer,
            "gradient_buckets": buckets, "activation_checkpoints": checkpoints}
    at_loss = base | {"logits_and_loss": logits}
    in_layers = base | {"layer_recompute": layers_live + layer_weights}
    return at_loss, in_layers, base | {"logits_and_loss": logits, "layer_recompute": layers_live + layer_weights}
