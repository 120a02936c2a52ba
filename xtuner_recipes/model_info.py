"""What a model directory says about itself, read from ``config.json`` without loading the model.

    >>> template_for({"model_type": "internlm2"})
    'internlm2_chat'
"""

import json
from pathlib import Path

# model_type in config.json → xtuner prompt template. Llama is split by vocabulary:
# Llama 3 has 128,256 tokens, Llama 2 32,000.
TEMPLATE_BY_MODEL_TYPE = {
    "internlm": "internlm_chat",
    "internlm2": "internlm2_chat",
    "internlm3": "internlm2_chat",
    "qwen": "qwen_chat",
    "qwen2": "qwen_chat",
    "qwen2_moe": "qwen_chat",
    "qwen3": "qwen_chat",
    "baichuan": "baichuan2_chat",
    "chatglm": "chatglm3",
    "mistral": "mistral",
    "mixtral": "mixtral",
    "gemma": "gemma",
    "gemma2": "gemma",
    "phi3": "phi3_chat",
    "cohere": "cohere_chat",
    "deepseek_v2": "deepseek_v2",
    "minicpm": "minicpm",
    "minicpm3": "minicpm3",
}


# The names the same quantity goes by in the config.json of the architectures xtuner trains.
SHAPE_KEYS = {
    "layers": ("num_hidden_layers", "num_layers", "n_layer", "n_layers"),
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "heads": ("num_attention_heads", "n_head", "n_heads"),
    "kv_heads": ("num_key_value_heads", "multi_query_group_num"),
    "intermediate": ("intermediate_size", "ffn_hidden_size", "n_inner"),
    "vocab": ("vocab_size", "padded_vocab_size"),
}


# Architectures whose positions are a learned embedding table of max_position_embeddings rows (GPT-2's wpe,
# OPT's embed_positions): a sample past it fails in the forward pass. Rotary (Llama, InternLM, Qwen, Mistral…)
# and ALiBi models compute their positions and train past it (tests/test_failure_proofs.py runs both).
LEARNED_POSITIONS = frozenset({"gpt2", "gpt_bigcode", "gpt_neo", "opt"})


def learned_positions(config: dict) -> bool:
    """Whether the model looks positions up in a learned table (``LEARNED_POSITIONS``)."""
    return str(config.get("model_type", "")).lower() in LEARNED_POSITIONS


def read_config(model_path: str) -> dict | None:
    """The parsed ``config.json`` of a local model directory, or None when there is none."""
    path = Path(model_path).expanduser() / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


EXPERT_COUNTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


def routes_to_experts(config: dict | None) -> bool:
    """Whether a ``config.json`` describes a mixture of experts (Mixtral, Qwen-MoE, OLMoE, DeepSeek-MoE), read from
    its fields alone (no model class built).

        >>> routes_to_experts({"model_type": "mixtral", "num_local_experts": 8}), routes_to_experts({"hidden_size": 8})
        (True, False)
    """
    if not isinstance(config, dict):
        return False
    return any(isinstance(config.get(key), int) and config[key] > 1 for key in EXPERT_COUNTS)


def template_for(config: dict) -> str | None:
    """The prompt template that matches a model's ``config.json``, when we know one."""
    model_type = str(config.get("model_type", "")).lower()
    if model_type == "llama":
        return "llama3_chat" if int(config.get("vocab_size") or 0) >= 128000 else "llama2_chat"
    return TEMPLATE_BY_MODEL_TYPE.get(model_type)


def model_slug(model_path: str) -> str:
    """The model's part of xtuner's config names: ``./internlm-chat-7b`` → ``internlm_chat_7b``."""
    name = Path(model_path.rstrip("/\\")).name or "model"
    slug = "".join(char if char.isalnum() else "_" for char in name.lower()).strip("_")
    return slug or "model"


def hub_config(name: str) -> tuple[dict | None, str | None]:
    """``(config.json, where it came from)`` of a hub model id before it is downloaded here: the Hugging Face
    cache's copy when one is there, else the shape fields bundled in ``hub_models.json``; ``(None, None)``."""
    import os

    if name.count("/") != 1 or name.startswith(("/", ".")):
        return None, None
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    cache = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub"))
    snapshots = sorted((cache / ("models--" + name.replace("/", "--")) / "snapshots").glob("*/config.json"),
                       key=lambda path: path.stat().st_mtime, reverse=True)
    for path in snapshots:
        config = read_config(str(path.parent))
        if config is not None:
            return config, f"the Hugging Face cache's copy ({path})"
    try:
        known = json.loads(Path(__file__).with_name("hub_models.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    config = known.get(name)
    return (dict(config), "xtuner-recipes' table of the hub models xtuner ships configs for") if config else (None, None)
