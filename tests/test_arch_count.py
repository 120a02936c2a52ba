"""The model's shape counted from its own class on the meta device (issue #26): dense, MoE and stand-ins."""

import json
from pathlib import Path

import pytest

from xtuner_recipes.validate.estimate.count import arch_of
from xtuner_recipes.validate.estimate.gpu import NF4_BYTES, Run, estimate

HUB = json.loads((Path(__file__).parents[1] / "xtuner_recipes" / "hub_models.json").read_text(encoding="utf-8"))
# Parameter counts the model cards publish (billions, as rounded there): an independent check of the table's
# shapes and of the counting, stand-ins included.
PUBLISHED = {
    "meta-llama/Llama-2-7b-hf": 6.74, "meta-llama/Meta-Llama-3-8B": 8.03, "mistralai/Mistral-7B-v0.1": 7.24,
    "mistralai/Mixtral-8x7B-v0.1": 46.7, "Qwen/Qwen1.5-MoE-A2.7B-Chat": 14.3, "Qwen/Qwen1.5-7B": 7.72,
    "deepseek-ai/deepseek-moe-16b-base": 16.4, "internlm/internlm2-7b": 7.74, "internlm/internlm2-1_8b": 1.89,
    "internlm/internlm2-20b": 19.86,
}
OLMOE = dict(model_type="olmoe", hidden_size=2048, intermediate_size=1024, num_hidden_layers=16,
             num_attention_heads=16, num_key_value_heads=16, vocab_size=50304, num_experts=64, num_experts_per_tok=8,
             max_position_embeddings=4096, tie_word_embeddings=False)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_count_matches_the_model_card(name):
    arch, why = arch_of(HUB[name])
    assert why is None
    digits = len(str(PUBLISHED[name]).split(".")[1])
    assert round(arch.total_params / 1e9, digits) == PUBLISHED[name]


@pytest.mark.parametrize("name", [n for n in sorted(HUB) if not n.startswith("_")
                                  and HUB[n]["model_type"] not in ("internlm", "internlm2", "deepseek", "deepseek_v2")])
def test_every_parameter_of_the_meta_model_is_counted_once(name):
    """Linears, embeddings and the rest add up to ``sum(p.numel())`` of the class transformers builds."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = dict(HUB[name])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(config.pop("model_type"), **config))
    arch, _ = arch_of(HUB[name])
    assert arch.total_params == sum(p.numel() for p in model.parameters())


TINY_MOE = {
    "mixtral": dict(model_type="mixtral", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=128, num_local_experts=4,
                    num_experts_per_tok=2),
    "qwen2_moe": dict(model_type="qwen2_moe", hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                      shared_expert_intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=4, vocab_size=128, num_experts=6, num_experts_per_tok=2, mlp_only_layers=[0]),
    "olmoe": dict(OLMOE, hidden_size=64, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=4, vocab_size=128, num_experts=8, num_experts_per_tok=2),
}


@pytest.mark.parametrize("family", sorted(TINY_MOE))
def test_lora_parameters_are_what_xtuner_wraps(family):
    """xtuner's LoRA (``find_all_linear_names`` when a config names no targets; a list when it does) wraps every
    expert. peft gives each wrapped ``nn.Linear(in, out)`` an A of ``in x r`` and a B of ``r x out``; counted here
    module by module on the real class (peft itself cannot import beside this machine's broken bitsandbytes)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from xtuner.model.utils import find_all_linear_names

    config = dict(TINY_MOE[family])
    arch, why = arch_of(config)
    assert why is None and arch.moe and arch.top_k == 2
    fields = dict(config)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(fields.pop("model_type"), **fields))
    for targets in (None, ["q_proj", "v_proj"]):
        names = set(targets or find_all_linear_names(model))
        wrapped = sum(8 * (m.in_features + m.out_features) for path, m in model.named_modules()
                      if isinstance(m, torch.nn.Linear) and path.rsplit(".", 1)[-1] in names)
        assert arch.lora_params(8, targets) == wrapped
    routed = sum(isinstance(m, torch.nn.Linear) and ".experts." in path for path, m in model.named_modules())
    assert routed == sum(g.count for g in arch.linears if g.routed) > 0


def test_a_mixture_of_experts_is_estimated_with_every_expert():
    """OLMoE-1B-7B's shape: 6.9B parameters held (4-bit), 1.3B a token; a dense 7B guess would hold 7B too but
    put LoRA on 7 linears a layer, not 64 experts' 192."""
    arch, _ = arch_of(OLMOE)
    assert round(arch.total_params / 1e9, 2) == 6.92 and arch.experts == 64 and arch.top_k == 8
    assert round(arch.active_linear_params / 1e9, 2) < 1.1
    result = estimate(arch, Run(max_length=2048))
    assert result.parts["weights"] * 1024 ** 3 >= arch.linear_params * NF4_BYTES
    per_expert = 64 * (2048 + 1024) * 3 * 64 * 16  # r x (in + out), gate/up/down, 64 experts, 16 layers
    assert arch.lora_params(64) > per_expert


@pytest.mark.parametrize("config, reason", [
    (HUB["deepseek-ai/DeepSeek-V2-Lite-Chat"], "no class for model_type 'deepseek_v2'"),
    (dict(model_type="granitemoe", hidden_size=64, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
          vocab_size=128, num_local_experts=4, num_experts_per_tok=2), "fused weights"),
    ({"model_type": "llama", "hidden_size": 64}, "gives no num_hidden_layers"),
    ({"hidden_size": 64}, "names no model_type"),
])
def test_what_it_cannot_count_gets_a_reason(config, reason):
    arch, why = arch_of(config)
    assert arch is None and reason in why


def test_internlm2s_fused_projection_is_what_target_modules_name():
    arch, _ = arch_of(HUB["internlm/internlm2-chat-7b"])
    assert {g.name for g in arch.linears} == {"wqkv", "wo", "w1", "w2", "w3"}
    assert arch.lora_params(8, ["wqkv"]) == 8 * (4096 + 4096 + 2 * 1024) * 32


@pytest.mark.parametrize("folder, params, experts", [
    ("mixtral/mixtral_8x7b_instruct", 46.7, "2 of 8 a token"),
    ("qwen_moe/qwen1_5/qwen1_5_moe_a2_7_b_chat", 14.3, "4 of 60 a token"),
    ("deepseek/deepseek_moe_16b_chat", 16.4, "6 of 64 a token"),
    ("deepseek/deepseek_v2_lite_chat", None, None),
])
def test_shipped_moe_configs_are_estimated_from_counted_parameters(cli, xtuner_configs, folder, params, experts):
    """xtuner's own MoE configs, their model named on the hub and not downloaded: the estimate comes from the
    counted model (the bundled shapes), or a reason says why there is none."""
    path = sorted(p for p in xtuner_configs if f"/configs/{folder}/" in p.as_posix())[0]
    done = cli("validate", path, "--format", "json")
    stats = json.loads(done.stdout)[0]["stats"]
    assert stats["model_config_source"].startswith("xtuner-recipes' table")
    if params is None:
        assert "estimated_peak_gib" not in stats
        assert "no class for model_type 'deepseek_v2'" in stats["memory_basis"]
        # the time says the same reason rather than nothing (a model the counter cannot build)
        assert "seconds_per_iter" not in stats and "no class for model_type 'deepseek_v2'" in stats["time_basis"]
        return
    assert round(stats["model_params"] / 1e9, 1) == params and stats["experts"] == experts
    assert stats["estimated_peak_gib"] > stats["model_params"] * 0.5 / 1024 ** 3  # every expert held, 4-bit or more
