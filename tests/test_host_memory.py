"""Host memory (peak RSS) of training and the export steps: the estimate, G004, and the committed
figures the H200 run was compared with (BENCHMARKS.md)."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, write_jsonl

ROOT = Path(__file__).parents[1]
SEVEN_B = dict(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)


def test_the_committed_estimate_is_what_the_code_says():
    """benchmarks/results/h200-host-estimate.json was written by this code before the H200 run."""
    from xtuner_recipes.validate.estimate.host import DEFAULT_SHARD, peaks
    from xtuner_recipes.validate.estimate.gpu import Arch

    committed = json.loads((ROOT / "benchmarks" / "results" / "h200-host-estimate.json").read_text())
    assert not committed["shard_measured"]
    found = peaks(Arch(**SEVEN_B), "nf4", shard_bytes=DEFAULT_SHARD)
    assert {k: committed[k] for k in found} == found


def test_sixteen_bit_training_holds_the_model_in_fp32_on_the_cpu():
    from xtuner_recipes.validate.estimate.host import BASE_GIB, GIB, peaks
    from xtuner_recipes.validate.estimate.gpu import Arch

    arch = Arch(**SEVEN_B)
    nf4, none = peaks(arch, "nf4", shard_bytes=2e9), peaks(arch, "none", shard_bytes=2e9)
    assert none["train"] - nf4["train"] == pytest.approx(arch.total_params * 4 / GIB, abs=0.01)
    assert nf4["merge"] == pytest.approx(BASE_GIB + 2e9 / GIB, abs=0.01)
    assert none["merge_cpu"] == nf4["merge_cpu"] > nf4["merge"]


def test_validate_reports_it_and_warns_past_host_mem(tiny_model, tmp_path, cli):
    from xtuner_recipes.model_info import read_config
    from xtuner_recipes.validate.estimate.host import largest_shard, peaks
    from xtuner_recipes.validate.estimate.count import arch_of

    rows = (FIXTURES / "data" / "medqa_us.jsonl").read_text(encoding="utf-8").splitlines() * 40
    data = tmp_path / "medqa.jsonl"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cli("gen", "medqa", "--model", tiny_model, "--data", data, "-o", tmp_path / "cfg.py", check_rc=0)
    shard, measured = largest_shard(str(tiny_model))
    assert measured and shard == max(p.stat().st_size for p in tiny_model.glob("*.safetensors"))
    expected = peaks(arch_of(read_config(str(tiny_model)))[0], "nf4", shard_bytes=shard)

    plain = cli("validate", tmp_path / "cfg.py", "--format", "json")
    report = json.loads(plain.stdout)[0]
    assert report["stats"]["host_peak_gib"] == expected
    assert not any(f["code"] == "G004" for f in report["findings"])  # no GPU here: not a training machine
    warned = cli("validate", tmp_path / "cfg.py", "--host-mem", "0.5")
    assert warned.returncode == 0  # an estimate: a warning, never an error
    assert "warning G004" in warned.stdout and f"{expected['train']:.1f} GiB of host memory" in warned.stdout
    assert f"host memory: {expected['train']:.1f} GiB to train" in warned.stdout


@settings(max_examples=25, deadline=None)
@given(heads=st.sampled_from([2, 4, 8]), kv_div=st.sampled_from([1, 2]), head_dim=st.sampled_from([8, 16]),
       layers=st.integers(1, 6), intermediate=st.integers(8, 96), vocab=st.integers(16, 600),
       tied=st.booleans(), shard_bytes=st.integers(2_000, 200_000))
def test_checkpoint_shards_split_as_save_pretrained_does(heads, kv_div, head_dim, layers, intermediate, vocab,
                                                         tied, shard_bytes):
    """The shards ``zero3_quantized_load`` walks are the ones huggingface_hub's splitter (what
    transformers' ``save_pretrained`` calls) makes of a real Llama state dict, tensor for tensor."""
    import torch
    from huggingface_hub import split_torch_state_dict_into_shards
    from transformers import LlamaConfig, LlamaForCausalLM

    from xtuner_recipes.validate.estimate.host import checkpoint_shards
    from xtuner_recipes.validate.estimate.count import arch_of

    config = LlamaConfig(hidden_size=heads * head_dim, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=heads // kv_div, intermediate_size=intermediate, vocab_size=vocab,
                         tie_word_embeddings=tied, torch_dtype="bfloat16")
    with torch.device("meta"):
        state = LlamaForCausalLM(config).to(torch.bfloat16).state_dict()
    if tied:
        state.pop("lm_head.weight")  # save_pretrained drops the tied copy
    split = split_torch_state_dict_into_shards(state, max_shard_size=shard_bytes)
    theirs = [[state[name].numel() * 2 for name in split.filename_to_tensors[file]]
              for file in sorted(split.filename_to_tensors)]
    arch = arch_of(config.to_dict())[0]
    ours = [[read for read, _ in shard] for shard in checkpoint_shards(arch, "nf4", shard_bytes)]
    assert ours == theirs
