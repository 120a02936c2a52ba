"""What the smoke run changes in a loaded config, each change said in words.

Applied to the ``Config`` mmengine loaded (never to the file): the user's config is
run as it is, but on a tiny model, for a few steps, and on a CPU without the parts
that need a GPU.
"""

import os
from pathlib import Path

from xtuner_recipes.compat.mmengine import settings
from xtuner_recipes.validate.data.leaves import type_name
from xtuner_recipes.validate.inputs import epoch_based

EVAL_TOKENS = 16
GPU_ONLY_WRAPPERS = {"AmpOptimWrapper": ("loss_scale", "dtype")}


def _replace_string(node, old: str, new: str) -> int:
    """Replace the string ``old`` by ``new`` anywhere in ``node``; the count of places."""
    count = 0
    items = dict.items(node) if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, str) and value == old:
            node[key] = new
            count += 1
        elif isinstance(value, dict | list):
            count += _replace_string(value, old, new)
    return count


def _datasets(node):
    """Every dict in ``node`` that is a dataset pipeline (it has a tokenizer and a max_length)."""
    if isinstance(node, dict):
        if "tokenizer" in node and "max_length" in node and "dataset" in node:
            yield node
        for value in dict.values(node):
            yield from _datasets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasets(value)


def adapt(cfg, *, model_from: str, model_to: str, steps: int | None, device: str,
          ranks: str | None = None) -> list[str]:
    """Change ``cfg`` in place for the smoke run; one sentence per change. ``ranks``: a launch of several
    processes, each recording in that folder that it joined the group and what it trained (``rank_hook``)."""
    notes = []
    places = _replace_string(settings(cfg), model_from, model_to)
    notes.append(f"model: {model_from} replaced by a tiny random copy of its architecture ({places} places)")

    if steps is not None:  # None: the config's own schedule
        train_cfg = cfg.train_cfg
        before = ", ".join(f"{k}={train_cfg[k]}" for k in ("max_epochs", "max_iters") if k in train_cfg)
        if epoch_based(train_cfg):
            # mmengine's EpochBasedTrainLoop takes no max_iters: one epoch over a slice of the data.
            train_cfg["max_epochs"] = 1
            rows = steps * int(cfg.train_dataloader.get("batch_size", 1) or 1)
            for dataset in _datasets(cfg.train_dataloader):
                dataset["max_dataset_length"] = rows
            notes.append(f"train_cfg: {before} → max_epochs=1 over the first {rows} rows (max_dataset_length), "
                         "the loop stays epoch-based")
            if cfg.get("param_scheduler"):
                # Its spans are fractions of the real epochs: over a few rows a warmup rounds to zero
                # iterations, which mmengine refuses. `validate` checks the real schedule.
                cfg["param_scheduler"] = [dict(type="ConstantLR", factor=1.0, by_epoch=False, begin=0, end=1)]
                notes.append("param_scheduler → a constant learning rate for the one-epoch slice "
                             "(validate checks the config's own schedule)")
        else:
            train_cfg.pop("max_epochs", None)
            train_cfg["max_iters"] = steps
            notes.append(f"train_cfg: {before} → max_iters={steps}")

    logger = cfg.get("default_hooks", {}).get("logger")
    if logger is not None:
        logger["interval"] = 1
        notes.append("default_hooks.logger.interval → 1 (every loss is checked)")
    for index, hook in enumerate(cfg.get("custom_hooks", [])):
        if "evaluation_inputs" in hook:
            hook["max_new_tokens"] = min(hook.get("max_new_tokens", 600), EVAL_TOKENS)
            notes.append(f"custom_hooks.{index}.max_new_tokens → {hook['max_new_tokens']} (chat samples kept short)")
    cores = os.cpu_count() or 1
    for dataset in _datasets(cfg.train_dataloader):
        if dataset.get("map_num_proc", 32) > cores:
            dataset["map_num_proc"] = cores
            notes.append(f"train_dataloader.dataset.map_num_proc → {cores} (this machine's cores)")

    if ranks is not None:
        notes += _distributed(cfg, ranks, device)
    if device == "cpu":
        llm = cfg.model.get("llm", {})
        if llm.pop("quantization_config", None) is not None:
            notes.append("model.llm.quantization_config removed: 4-bit bitsandbytes needs CUDA (LoRA stays)")
        notes += cpu_optim_wrapper(cfg.optim_wrapper)
    return notes


def cpu_optim_wrapper(wrapper) -> list[str]:
    """Change an ``optim_wrapper`` dict in place for a CPU (AMP and bitsandbytes' optimizers need CUDA); one
    sentence per change. Also ``calibrate``'s, on a machine without a GPU."""
    notes = []
    optimizer = dict.get(wrapper, "optimizer", {})
    # Read raw: building bitsandbytes' optimizer class here would import what fails on a CPU.
    chosen = (type_name(dict.get(optimizer, "type")) or "") if isinstance(optimizer, dict) else ""
    if chosen.startswith("Paged") or chosen.endswith(("8bit", "32bit")):
        # bitsandbytes' optimizers run their update in CUDA kernels.
        optimizer["type"] = "AdamW"
        notes.append(f"optim_wrapper.optimizer.type: {chosen} (bitsandbytes, CUDA only) → torch's AdamW")
    name = type_name(dict.get(wrapper, "type", "OptimWrapper"))
    if name in GPU_ONLY_WRAPPERS:
        # A registry name, not the class: lazy-import configs print every type as text.
        wrapper["type"] = "OptimWrapper"
        dropped = [key for key in GPU_ONLY_WRAPPERS[name] if wrapper.pop(key, None) is not None]
        notes.append(f"optim_wrapper.type: {name} → OptimWrapper (AMP needs CUDA; dropped {', '.join(dropped)})")
    return notes


def _distributed(cfg, ranks: str, device: str) -> list[str]:
    # by its module path, which mmengine's registry imports (a class object would not print in the config's dump)
    cfg.setdefault("custom_hooks", []).append(dict(type="xtuner_recipes.smoke.rank_hook.RankRecord", folder=ranks))
    notes = ["custom_hooks: + RankRecord (each rank records that it joined and a digest of what it trained)"]
    if device == "cpu":
        env_cfg = cfg.setdefault("env_cfg", {})
        dist_cfg = env_cfg.setdefault("dist_cfg", {})
        if dist_cfg.get("backend") != "gloo":
            notes.append(f"env_cfg.dist_cfg.backend: {dist_cfg.get('backend')} → gloo (NCCL needs GPUs)")
            dist_cfg["backend"] = "gloo"
        # mmengine wraps the model in DDP with device_ids=[LOCAL_RANK], which a model on the CPU refuses
        wrapper = cfg.get("model_wrapper_cfg") or {"type": "MMDistributedDataParallel", "broadcast_buffers": False}
        wrapper["device_ids"] = None
        cfg["model_wrapper_cfg"] = wrapper
        notes.append("model_wrapper_cfg.device_ids → None (DistributedDataParallel of a model on the CPU)")
    return notes


def adapt_on_load(plan: dict, notes: list[str]) -> None:
    """Make ``Config.fromfile`` adapt the smoke config whenever an xtuner tool loads it."""
    from mmengine.config import Config

    original = Config.fromfile  # a staticmethod in mmengine
    target = Path(plan["config"]).resolve()

    def fromfile(filename, *args, **kwargs):
        cfg = original(filename, *args, **kwargs)
        if Path(str(filename)).resolve() == target:
            notes.extend(adapt(cfg, model_from=plan["model_from"], model_to=plan["model"],
                               steps=plan["steps"], device=plan["device"], ranks=plan.get("ranks")))
        return cfg

    Config.fromfile = staticmethod(fromfile)


def patch_runtime(device: str) -> list[str]:
    """Stand-ins in this process for what a CPU lacks; one sentence per stand-in."""
    import torch

    notes = []
    if device == "cpu" and (os.environ.get("WORLD_SIZE", "1") != "1" or "SLURM_PROCID" in os.environ):
        # mmengine's launchers pin each rank to its GPU (torch.cuda.set_device(LOCAL_RANK)) before the group forms
        torch.cuda.set_device = lambda device: None
        notes.append("torch.cuda.set_device: a no-op on the CPU (mmengine pins each rank to a GPU)")
    if device == "cpu" and not hasattr(torch.cpu, "is_bf16_supported"):
        # xtuner asks the device whether it has bf16; this torch's CPU module has no such function.
        torch.cpu.is_bf16_supported = lambda: False
        notes.append("torch.cpu.is_bf16_supported: missing in this torch; a stand-in answers False")
    if device == "cpu":
        try:
            import bitsandbytes  # noqa: F401
        except Exception as error:  # noqa: BLE001 - any import failure makes peft fail the same way
            import sys

            # peft imports bitsandbytes whenever it is installed; with no quantization left it is not needed.
            sys.modules["bitsandbytes"] = None
            notes.append(f"bitsandbytes hidden from peft: it fails to import here ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})")
    return notes
