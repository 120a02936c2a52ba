"""Count a model's shape from its ``config.json`` by building its own class on the meta device (no weights are
read or allocated, as accelerate's ``estimate-memory`` does): every linear layer, expert and embedding is
counted by construction, and an architecture this cannot build gets a reason instead of a dense guess.

Three model types xtuner ships keep their code beside their weights (``trust_remote_code``), which is not
here before a download; each is built as a transformers class whose parameters are the same, said so in
``Arch.counted``:

- ``internlm`` (InternLM 1): Llama's block with biased attention projections;
- ``internlm2``: Llama's block with grouped-query attention, its q, k and v counted as one fused ``wqkv`` and
  every linear under InternLM2's own name (``wqkv``, ``wo``, ``w1``, ``w2``, ``w3``: what ``target_modules`` names);
- ``deepseek`` (DeepSeek-MoE): Qwen2-MoE's block with its first ``first_k_dense_replace`` layers dense, the
  ``n_shared_experts`` shared experts as one shared MLP of their summed width, and no shared-expert gate.
"""

import dataclasses
import functools
import json
import re

from xtuner_recipes.validate.estimate.arch import Arch, Linears

EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOP_K_KEYS = ("num_experts_per_tok", "moe_topk", "top_k", "num_experts_per_token")
ATTENTION = re.compile(r"(^|\.)(self_attn|attention|attn)\.")
ROUTED = re.compile(r"(^|\.)experts\.\d+\.")


def _internlm(config: dict) -> tuple[str, dict]:
    return "llama", {**config, "attention_bias": bool(config.get("bias", True))}


def _internlm2(config: dict) -> tuple[str, dict]:
    return "llama", {**config, "attention_bias": bool(config.get("bias", False))}


def _deepseek(config: dict) -> tuple[str, dict]:
    layers, dense = int(config["num_hidden_layers"]), int(config.get("first_k_dense_replace", 0))
    every = int(config.get("moe_layer_freq", 1)) or 1
    return "qwen2_moe", {
        **config, "num_experts": config["n_routed_experts"], "decoder_sparse_step": 1,
        "mlp_only_layers": [i for i in range(layers) if i < dense or i % every],
        "shared_expert_intermediate_size": int(config.get("n_shared_experts") or 0) * int(config["moe_intermediate_size"]),
        "norm_topk_prob": bool(config.get("norm_topk_prob", False))}


def _internlm2_names(linears: tuple[Linears, ...]) -> tuple[Linears, ...]:
    """Llama's linears under InternLM2's names (what a ``target_modules`` list names), q, k and v fused."""
    names = {"o_proj": "wo", "gate_proj": "w1", "up_proj": "w3", "down_proj": "w2"}
    kept = tuple(dataclasses.replace(g, name=names[g.name], path=g.path.rsplit(".", 1)[0] + "." + names[g.name])
                 for g in linears if g.name in names)
    parts = [g for g in linears if g.name in ("q_proj", "k_proj", "v_proj")]
    fused = dataclasses.replace(parts[0], name="wqkv", path=parts[0].path.rsplit(".", 1)[0] + ".wqkv",
                                fan_out=sum(g.fan_out for g in parts))
    return (fused,) + kept


# model_type -> (what builds it, modules of the stand-in the real model lacks, its linears renamed, why)
STAND_INS = {
    "internlm": (_internlm, (), None, "InternLM's block is Llama's with biased attention projections"),
    "internlm2": (_internlm2, (), _internlm2_names, "InternLM2's block is Llama's with grouped-query attention, "
                  "q, k and v fused in one wqkv"),
    "deepseek": (_deepseek, ("shared_expert_gate",), None, "DeepSeek-MoE's block is Qwen2-MoE's without the "
                 "shared expert's gate"),
}


def arch_of(config: dict | None) -> tuple[Arch | None, str | None]:
    """``(Arch, None)`` counted from ``config`` (a parsed ``config.json``), or ``(None, why not)``."""
    if not isinstance(config, dict):
        return None, "the model has no config.json here"
    try:
        key = json.dumps(config, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None, "its config.json holds values that are not JSON"
    return _counted(key)


@functools.lru_cache(maxsize=32)
def _counted(key: str) -> tuple[Arch | None, str | None]:
    from xtuner_recipes.model_info import SHAPE_KEYS

    config = json.loads(key)
    model_type = str(config.get("model_type") or "")
    if not model_type:
        return None, "its config.json names no model_type"
    missing = [keys[0] for what, keys in SHAPE_KEYS.items()
               if what != "kv_heads" and not any(isinstance(config.get(k), int) for k in keys)]
    if missing:  # transformers would fill in its defaults: a guess at a model nobody described
        return None, f"its config.json gives no {', '.join(missing)}"
    build, drop, rename, note = STAND_INS.get(model_type, (lambda c: (model_type, c), (), None, ""))
    try:
        class_type, fields = build(config)
    except (KeyError, TypeError, ValueError) as error:
        return None, f"its config.json lacks what a {model_type} model needs ({error})"
    try:
        model = _meta_model(class_type, fields)
    except _Unknown:
        return None, (f"transformers has no class for model_type {model_type!r} here (its code ships with the "
                      "checkpoint): download the model to count it, or the estimate is not made")
    except Exception as error:  # noqa: BLE001 - any class's own complaint about its config is a reason
        return None, f"transformers could not build a {model_type} model from its config.json: {error}"
    arch, why = _walk(model, config, drop, note)
    if arch is not None and rename is not None:
        arch = dataclasses.replace(arch, linears=rename(arch.linears))
    return arch, why


class _Unknown(Exception):
    pass


def _meta_model(model_type: str, fields: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    try:
        hf_config = AutoConfig.for_model(model_type, **{k: v for k, v in fields.items() if k != "model_type"})
    except ValueError as error:
        if "Unrecognized model identifier" in str(error):
            raise _Unknown from error
        raise
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(hf_config)
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            raise _Unknown from error
        raise
    finally:
        hf_logging.set_verbosity(verbosity)


def _walk(model, config: dict, drop: tuple[str, ...], note: str) -> tuple[Arch | None, str | None]:
    import torch

    output = model.get_output_embeddings()
    head = id(output.weight) if output is not None else None
    embedding_ids = {id(model.get_input_embeddings().weight), head} - {None}
    groups: dict[tuple, list] = {}
    linear_ids = set()
    for path, module in model.named_modules():
        if any(part in drop for part in path.split(".")):
            continue
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in embedding_ids:
            routed = bool(ROUTED.search(path))
            attention = bool(ATTENTION.search(path + "."))
            name = path.rsplit(".", 1)[-1]
            shape = (name, re.sub(r"\.\d+\.", ".*.", path), module.in_features, module.out_features, routed, attention)
            groups.setdefault(shape, [path, 0])[1] += 1
            linear_ids.add(id(module.weight))
    dropped = sum(p.numel() for path, p in model.named_parameters()
                  if any(part in drop for part in path.split(".")))
    params = {id(p): p.numel() for p in model.parameters()}
    other = sum(n for i, n in params.items() if i not in linear_ids and i not in embedding_ids) - dropped
    linears = tuple(Linears(name, first, fan_in, fan_out, count, routed, attention)
                    for (name, _, fan_in, fan_out, routed, attention), (first, count) in groups.items())
    if not linears:
        return None, f"its {type(model).__name__} has no nn.Linear layers to quantize or adapt"
    experts = next((int(config[k]) for k in EXPERT_KEYS if isinstance(config.get(k), int) and config[k] > 0), 0)
    top_k = next((int(config[k]) for k in TOP_K_KEYS if isinstance(config.get(k), int) and config[k] > 0), 0)
    routed = any(group.routed for group in linears)
    fused = any(re.search(r"(^|\.)experts?(\.|$)", path) for path, p in model.named_parameters()
                if id(p) not in linear_ids)
    if (experts or fused) and not routed:
        return None, (f"its {type(model).__name__} keeps its experts in fused weights, not nn.Linear "
                      "layers: bitsandbytes leaves them unquantized and LoRA skips them, which is not modelled")
    if routed and not (experts and top_k):
        return None, f"its {type(model).__name__} routes tokens to experts, but config.json gives no expert count or top-k"
    hf = model.config
    counted = f"{type(model).__name__} built on the meta device" + (f" (a stand-in: {note})" if note else "")
    intermediate = getattr(hf, "moe_intermediate_size", None) if routed else None
    arch = Arch(hidden=hf.hidden_size, layers=hf.num_hidden_layers, heads=hf.num_attention_heads,
                kv_heads=getattr(hf, "num_key_value_heads", None) or hf.num_attention_heads,
                intermediate=intermediate or getattr(hf, "intermediate_size", 0) or 0, vocab=hf.vocab_size,
                tied_embeddings=len(embedding_ids) == 1, linears=linears, other_params=other,
                experts=experts if routed else 0, top_k=top_k if routed else 0, counted=counted,
                attention_width=(getattr(hf, "head_dim", None) or 0) * hf.num_attention_heads,
                rotary_dim=(getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads)
                if any(path.endswith("rotary_emb") for path, _ in model.named_modules()) else 0)
    return arch, None
