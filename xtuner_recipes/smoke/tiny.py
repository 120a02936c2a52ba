"""A tiny, randomly initialised copy of a model: its ``config.json`` shrunk, its own tokenizer.

The shrinking is a pure function of the config's dict, so it is tested without torch:

    >>> shrink({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
    ...         "num_attention_heads": 32, "intermediate_size": 11008})[0]["hidden_size"]
    64
"""

import json
import shutil
from pathlib import Path

from xtuner_recipes.model_info import SHAPE_KEYS

LAYERS, HIDDEN, HEADS, INTERMEDIATE = 2, 64, 4, 128

# Weight files are left behind: the copy gets fresh random weights.
WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pth", ".pt", ".ckpt", ".h5", ".msgpack", ".gguf")


def shrink(config: dict) -> tuple[dict, list[str]]:
    """``config`` with 2 layers and width 64; the second item says what changed."""
    small = dict(config)
    changes = []

    def put(keys, value):
        for key in keys:
            if key in small and small[key] != value:
                changes.append(f"{key} {small[key]} → {value}")
                small[key] = value

    put(SHAPE_KEYS["layers"], LAYERS)
    put(SHAPE_KEYS["hidden"], HIDDEN)
    put(SHAPE_KEYS["intermediate"], INTERMEDIATE)
    heads = small.get("num_attention_heads")
    kv = small.get("num_key_value_heads")
    put(SHAPE_KEYS["heads"], HEADS)
    if kv is not None:  # grouped-query attention stays grouped
        put(SHAPE_KEYS["kv_heads"], HEADS if kv == heads else 2)
    if small.get("head_dim") is not None:
        put(("head_dim",), HIDDEN // HEADS)
    for key in ("quantization_config", "auto_map_weights"):
        if small.pop(key, None) is not None:
            changes.append(f"{key} removed")
    return small, changes


def model_files(source: Path) -> list[Path]:
    """Everything in ``source`` but the weights: config, tokenizer, remote code."""
    return sorted(
        path for path in source.iterdir()
        if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES) and not path.name.endswith(".index.json")
    )


def build_tiny(source: Path, target: Path, *, seed: int = 0) -> list[str]:
    """Write a tiny random model of ``source``'s architecture to ``target``; return what was shrunk."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    target.mkdir(parents=True, exist_ok=True)
    for path in model_files(source):
        shutil.copy2(path, target / path.name)
    config_path = target / "config.json"
    small, changes = shrink(json.loads(config_path.read_text(encoding="utf-8")))
    config_path.write_text(json.dumps(small, indent=2) + "\n", encoding="utf-8")
    config = AutoConfig.from_pretrained(str(target), trust_remote_code=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=True)
    model.save_pretrained(str(target))
    return changes
