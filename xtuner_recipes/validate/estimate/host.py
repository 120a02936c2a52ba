"""Peak host memory (RSS) of training and of each export step, per process, in GiB.

What stays in host memory, by step (xtuner 0.2.0, transformers 4.48, peft 0.14):
- every step: the process itself — Python, torch, CUDA's host-side libraries and context, xtuner's
  imports (``BASE_GIB``, measured: the NF4 training process's peak less one checkpoint shard);
- loading a model with 4-bit quantization, or with ``low_cpu_mem_usage`` onto a GPU (``merge``'s
  default ``--device cuda``): one checkpoint shard at a time passes through host memory;
- training without quantization: xtuner builds the model on the CPU and peft's
  ``prepare_model_for_kbit_training`` casts every 16-bit parameter to fp32 there, before the
  runner moves it to the GPU: 4 bytes a parameter, beside the shard being read;
- training a 4-bit or 8-bit model under DeepSpeed ZeRO-3: transformers quantizes each weight on the GPU
  and moves it back to the CPU (``_load_state_dict_into_meta_model``), so the whole quantized model
  gathers in host memory, beside the shard being read, before DeepSpeed partitions it onto the GPUs
  (``zero3_quantized_load``);
- ``pth_to_hf``: builds the config's model the same way (then loads the adapter's weights, which are
  small); ``merge --device cpu``: the whole model in fp16 on the CPU.

    >>> from xtuner_recipes.validate.estimate.gpu import Arch
    >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    >>> peaks(arch, "nf4", shard_bytes=5e9)["train"]
    5.91
"""

from pathlib import Path


GIB = 1024 ** 3
BASE_GIB = 1.25  # H200, 2026-11-29: NF4 training peaked at 5.91 GiB with 4.66 GiB shards (BENCHMARKS.md)
DEFAULT_SHARD = 5e9  # transformers' save_pretrained max_shard_size, when the weights aren't there to measure
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weight_files(model_dir: str | None) -> list[int]:
    """The bytes of each checkpoint file in ``model_dir`` (none when it is not here)."""
    if not model_dir:
        return []
    return [p.stat().st_size for p in Path(model_dir).expanduser().glob("*")
            if p.suffix in WEIGHT_SUFFIXES and p.is_file() and not p.name.startswith("training_args")]


def largest_shard(model_dir: str | None) -> tuple[float, bool]:
    """The largest checkpoint file's bytes in ``model_dir``, and whether it was measured (else assumed)."""
    sizes = weight_files(model_dir)
    return (float(max(sizes)), True) if sizes else (DEFAULT_SHARD, False)


def peaks(arch, quantization: str, *, shard_bytes: float, offloaded_bytes: float = 0.0,
          zero_stage: int = 0, saved_bytes: float = 0.0) -> dict[str, float]:
    """Peak RSS a step, GiB: ``train``, ``pth_to_hf``, ``merge`` (its default ``--device cuda``) and
    ``merge_cpu`` (``--device cpu``). ``offloaded_bytes``: what DeepSpeed's offload keeps on the CPU for
    one training process (``offloaded``); ``saved_bytes``: what saving a checkpoint holds (``checkpoint_save``)."""
    params = arch.total_params
    shard = shard_bytes / GIB
    build = BASE_GIB + shard + (params * 4 / GIB if quantization == "none" else 0.0)
    train = max(build, BASE_GIB + saved_bytes / GIB)
    if zero_stage >= 3 and quantization in ("nf4", "int8"):
        train = BASE_GIB + zero3_quantized_load(arch, quantization, shard_bytes) / GIB
    return {"train": round(train + offloaded_bytes / GIB, 2), "pth_to_hf": round(build, 2),
            "merge": round(BASE_GIB + shard, 2), "merge_cpu": round(BASE_GIB + params * 2 / GIB + shard, 2)}


def zero3_quantized_load(arch, quantization: str, shard_bytes: float) -> float:
    """Peak bytes, past the process itself, of loading a checkpoint into a quantized model under ZeRO-3.

    The checkpoint is read a shard at a time, in its tensors' order (embeddings, then each layer's
    linear weights and norms, the final norm, ``lm_head``), in 16-bit shards of at most ``shard_bytes``
    (transformers' ``save_pretrained`` starts a new shard when the next tensor would not fit). While a
    shard is read, host memory holds what earlier shards left (quantized linear weights, 16-bit
    everything else), the shard itself, and the quantized copies made from it so far. Only a quantized
    weight's data comes back to the CPU (its scales stay on the GPU), and the 16-bit tensors that are not
    quantized stay as they were read, so they are counted once.

        >>> from xtuner_recipes.validate.estimate.gpu import Arch
        >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
        >>> round(zero3_quantized_load(arch, "nf4", 5e9) / GIB, 2)
        8.15
    """
    held = peak = 0.0
    for shard in checkpoint_shards(arch, quantization, shard_bytes):
        read = sum(size for size, _ in shard)
        made = sum(copy for _, copy in shard)
        peak = max(peak, held + read + made)
        held += made + sum(size for size, copy in shard if not copy)
    return peak


def checkpoint_shards(arch, quantization: str, shard_bytes: float) -> list[list[tuple[float, float]]]:
    """The 16-bit checkpoint's shards as ``save_pretrained`` splits it (huggingface_hub's
    ``split_torch_state_dict_into_shards``: in the state dict's order, a new shard when the next tensor
    would not fit, a tensor larger than a shard on its own), in the order transformers loads them, each a
    list of (bytes read, bytes its quantized copy adds) a tensor."""
    per_weight = {"nf4": 0.5, "int8": 1.0}[quantization]
    embedding = arch.vocab * arch.hidden * 2
    tensors = [(embedding, 0.0)]
    groups = arch.all_linears()
    for layer in range(arch.layers):  # a group of n linears over L layers: n // L a layer, the first layers one more
        for group in groups:
            size = group.fan_in * group.fan_out
            many = group.count // arch.layers + (1 if layer < group.count % arch.layers else 0)
            tensors += [(size * 2, size * per_weight)] * many
        tensors += [(arch.hidden * 2, 0.0)] * 2
    tensors += [(arch.hidden * 2, 0.0)] + ([] if arch.tied_embeddings else [(embedding, 0.0)])
    shards, current, size = [], [], 0.0
    for tensor in tensors:
        if tensor[0] > shard_bytes:  # too big for any shard: one of its own, numbered before the open one
            shards.append([tensor])
            continue
        if size + tensor[0] > shard_bytes:
            shards.append(current)
            current, size = [], 0.0
        current.append(tensor)
        size += tensor[0]
    return shards + ([current] if current else [])


def offloaded(arch, run) -> float:
    """Bytes one training process keeps on the CPU under DeepSpeed offload: its share of the fp32 master
    weights and optimizer states, and with parameter offload its share of the 16-bit (or 4-bit) weights.
    Measured for ``deepspeed_zero2_offload`` (+4.6%, BENCHMARKS.md); parameter offload is not."""
    from xtuner_recipes.validate.estimate.gpu import NF4_BYTES, INT8_BYTES

    offload_optimizer, offload_param = run.offload
    if not (offload_optimizer or offload_param) or run.lora_r is None:
        return 0.0
    trainable = arch.lora_params(run.lora_r, run.lora_targets)
    total = trainable * (4 + run.optimizer_state_bytes) if offload_optimizer else 0.0
    if offload_param:
        per_weight = {"nf4": NF4_BYTES, "int8": INT8_BYTES}.get(run.quantization, 2)
        total += arch.linear_params * per_weight + arch.embedding_params * 2 + trainable * 2
    return total / max(run.gpus, 1)


# Saving a checkpoint without DeepSpeed (mmengine's ``Runner.save_checkpoint``): the model's state dict (xtuner's
# holds the trainable weights only) and the optimizer's states are copied to the CPU, then ``torch.save`` writes
# them into an ``io.BytesIO``, which CPython grows by an eighth past what it holds, before the file is written:
# the checkpoint is in host memory twice and an eighth. Found on the H200's OLMoE run (2026-12-07): 16.5 GiB of
# host memory where loading alone peaks at 5.9 (BENCHMARKS.md). A dense 7B's LoRA checkpoint is smaller than one
# of its 5 GB shards, so loading stays its peak.
SAVE_COPIES = 2 + 1 / 8


def checkpoint_save(arch, run) -> float:
    """Bytes the checkpoint save holds past the process itself, for ``run`` without DeepSpeed (DeepSpeed's engine
    saves its own files from the GPU: 0)."""
    if run.zero_stage:
        return 0.0
    if run.lora_r is None:
        state = arch.total_params * (2 + 4 + run.optimizer_state_bytes)  # the model, fp32 master copies, states
    else:
        state = arch.lora_params(run.lora_r, run.lora_targets) * (4 + run.optimizer_state_bytes)
    return state * SAVE_COPIES


def machine_gib() -> float | None:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        return None
