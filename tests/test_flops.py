"""The FLOP counts of ``estimate.flops`` against torch's own counter (``torch.utils.flop_counter``) running the
model's transformers class (#25): for the dense families, the real shapes under ``FakeTensorMode`` (tensors
with shapes and no data, like the meta device; transformers' rotary embedding refuses the meta device itself),
and for mixtures of experts (whose routing depends on the data) a tiny random model on the CPU. Eager attention:
torch's counter does not count the CPU's fused attention kernel."""

import json
from pathlib import Path

import pytest

from xtuner_recipes.validate.estimate import flops
from xtuner_recipes.validate.estimate.count import arch_of

DENSE = {
    "llama": dict(model_type="llama", hidden_size=256, intermediate_size=688, num_hidden_layers=3,
                  num_attention_heads=8, num_key_value_heads=2, vocab_size=1000),
    "qwen2": dict(model_type="qwen2", hidden_size=256, intermediate_size=688, num_hidden_layers=3,
                  num_attention_heads=8, num_key_value_heads=8, vocab_size=1000, tie_word_embeddings=False),
    "mistral": dict(model_type="mistral", hidden_size=256, intermediate_size=688, num_hidden_layers=3,
                    num_attention_heads=8, num_key_value_heads=4, vocab_size=1000),
    "internlm": dict(model_type="internlm", hidden_size=256, intermediate_size=688, num_hidden_layers=3,
                     num_attention_heads=8, vocab_size=1000, bias=True),
    "gemma": dict(model_type="gemma", hidden_size=256, intermediate_size=688, num_hidden_layers=3,
                  num_attention_heads=8, num_key_value_heads=2, head_dim=64, vocab_size=1000),
}
MOE = {
    "mixtral": dict(model_type="mixtral", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=128, num_local_experts=4,
                    num_experts_per_tok=2),
    "qwen2_moe": dict(model_type="qwen2_moe", hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                      shared_expert_intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, vocab_size=128, num_experts=6, num_experts_per_tok=2),
    "olmoe": dict(model_type="olmoe", hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, vocab_size=128, num_experts=8, num_experts_per_tok=2),
}


def _model(config: dict, device: str = "cpu"):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from xtuner_recipes.validate.estimate.count import STAND_INS

    model_type, fields = config["model_type"], dict(config)
    if model_type in STAND_INS:
        model_type, fields = STAND_INS[model_type][0](fields)
    fields.pop("model_type", None)
    torch.manual_seed(0)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **fields), attn_implementation="eager")


def _counted(run) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


HUB = json.loads((Path(__file__).parents[1] / "xtuner_recipes" / "hub_models.json").read_text(encoding="utf-8"))


def _fake_forward(config: dict, length: int) -> int:
    """torch's count of one forward pass over ``length`` tokens of ``config``'s class, its tensors shapes alone."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        model = _model(config)
        with torch.no_grad():
            return _counted(lambda: model(input_ids=torch.zeros(1, length, dtype=torch.long)))


@pytest.mark.parametrize("name", ["meta-llama/Meta-Llama-3-8B", "Qwen/Qwen1.5-7B", "mistralai/Mistral-7B-v0.1",
                                  "internlm/internlm-chat-7b", "internlm/internlm2-chat-7b"])
def test_forward_flops_of_real_shapes_equal_torchs_count(name):
    arch, _ = arch_of(HUB[name])
    assert sum(flops.forward(arch, sequences=1, length=512).values()) == _fake_forward(HUB[name], 512)


@pytest.mark.parametrize("family", sorted(DENSE))
def test_forward_flops_of_each_family_equal_torchs_count(family):
    arch, _ = arch_of(DENSE[family])
    assert sum(flops.forward(arch, sequences=1, length=48).values()) == _fake_forward(DENSE[family], 48)


@pytest.mark.parametrize("family", sorted(MOE))
def test_forward_flops_of_a_mixture_of_experts_equal_torchs_count(family):
    """Every token visits exactly top-k experts, so the routed share is exact whatever the router chose."""
    import torch

    model = _model(MOE[family])
    ids = torch.randint(0, 128, (1, 24))
    with torch.no_grad():
        counted = _counted(lambda: model(input_ids=ids))
    arch, _ = arch_of(MOE[family])
    assert sum(flops.forward(arch, sequences=1, length=24).values()) == counted


@pytest.mark.parametrize("checkpointing", [True, False])
def test_a_frozen_models_training_iteration_equals_torchs_count(checkpointing):
    """Forward, the recompute of activation checkpointing, and the backward's input gradients through frozen
    weights, as xtuner trains a LoRA model (LoRA's own A and B are counted by rule: peft cannot be imported beside
    this machine's bitsandbytes, so ``lora_r=0`` here adds none)."""
    import torch

    model = _model(DENSE["llama"])
    model.requires_grad_(False)
    model.enable_input_require_grads()  # what prepare_model_for_kbit_training does
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model.train()
    ids = torch.randint(0, 1000, (1, 32))
    counted = _counted(lambda: model(input_ids=ids, labels=ids).loss.backward())
    arch, _ = arch_of(DENSE["llama"])
    assert flops.iteration(arch, sequences=1, length=32, lora_r=0, checkpointing=checkpointing) == counted


def test_full_fine_tuning_adds_the_weight_gradients():
    import torch

    model = _model(DENSE["qwen2"])
    model.get_input_embeddings().requires_grad_(False)  # embeddings' gradient is a scatter, not a matmul
    model.train()
    ids = torch.randint(0, 1000, (1, 32))
    counted = _counted(lambda: model(input_ids=ids, labels=ids).loss.backward())
    arch, _ = arch_of(DENSE["qwen2"])
    assert flops.iteration(arch, sequences=1, length=32, lora_r=None, checkpointing=False) == counted
