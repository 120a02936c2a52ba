"""Each error `validate` reports for a new failure class, shown failing in xtuner, mmengine, datasets or torch
themselves on the same input (the fixtures under fixtures/invalid/ plant the same mistakes in a config).
Where a finding is *not* an error, the test shows the consumer accepting the input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_jsonl
from xtuner_recipes.compat.mmengine import settings

XTUNER = shutil.which("xtuner", path=str(Path(sys.executable).parent))


def test_D007_load_dataset_fails_on_a_file_given_as_path(tmp_path):
    from datasets import load_dataset

    data = write_jsonl(tmp_path / "train.jsonl", [{"text": "hi"}])
    for path in (str(data), "./train.jsonl"):
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            with pytest.raises(Exception, match="(?i)couldn't|offline|not found|doesn't exist|repo id"):
                load_dataset(path=path)
        finally:
            os.chdir(cwd)
    assert len(load_dataset("json", data_files=str(data))["train"]) == 1  # the fix D007's hint names


def test_D008_an_unknown_map_function_name_fails_in_xtuner():
    from datasets import Dataset
    from xtuner.dataset.huggingface import map_dataset

    with pytest.raises(TypeError, match="no_such_map_fn"):
        map_dataset(Dataset.from_list([{"text": "hi"}]), "no_such_map_fn", 1)


def test_C005_torch_refuses_a_batch_size_of_zero_or_a_float():
    from torch.utils.data import BatchSampler, SequentialSampler

    for bad in (0, 2.0, -1):
        with pytest.raises(ValueError, match="batch_size"):
            BatchSampler(SequentialSampler(range(4)), batch_size=bad, drop_last=False)


def test_max_epochs_zero_gives_a_warmup_mmengine_refuses():
    import torch
    from mmengine.optim import LinearLR

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    warmup_end = int(0.03 * 0 * 40)  # warmup_ratio x max_epochs x iterations per epoch
    with pytest.raises(ValueError, match="end should be larger than begin"):
        LinearLR(optimizer, begin=0, end=warmup_end, start_factor=1e-5)


def test_L003_xtuner_check_cfg_refuses_varlen_attention_with_batches_of_two(tmp_path):
    import argparse

    from mmengine.config import Config
    from xtuner.tools.train import check_cfg

    cfg = Config(dict(use_varlen_attn=True, train_dataloader=dict(batch_size=2, dataset=dict(max_length=8))))
    with pytest.raises(NotImplementedError, match="batch size should be set to 1"):
        check_cfg(cfg, argparse.Namespace(deepspeed=None))


def test_L003_the_runner_cannot_start_without_a_model(tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    with pytest.raises(KeyError, match="model"):
        Runner.from_cfg(Config(dict(work_dir=str(tmp_path))))


@pytest.mark.slow
def test_L004_xtuner_train_dies_formatting_a_config_that_holds_a_class(tmp_path, cli):
    """The real `xtuner train`: it stops in the Runner's config log, before building the model, and exits 0."""
    from tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "model-chat", weights=False)
    data = write_jsonl(tmp_path / "train.jsonl", [{"question": "q", "options": {"A": "a"}, "answer": "a"}])
    config = tmp_path / "cfg.py"
    cli("gen", "medqa", "--model", model, "--data", data, "-o", config, check_rc=0)
    fixture = json.loads((Path(__file__).parent / "fixtures" / "invalid" / "L004.json").read_text())
    for old, new in fixture["replace"]:
        config.write_text(config.read_text().replace(old, new))
    result = subprocess.run([XTUNER, "train", str(config), "--work-dir", str(tmp_path / "work")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert "Failed to format the config file" in result.stdout + result.stderr
    assert result.returncode == 0  # xtuner's own exit status says nothing


def test_a_map_function_defined_in_the_config_passes_xtuners_preflight(tmp_path):
    """xtuner's train script turns config-defined functions into registered names, so cfg.pretty_text works."""
    from mmengine.config import Config
    from xtuner.tools.train import register_function

    path = tmp_path / "cfg.py"
    path.write_text("from xtuner.dataset.map_fns import alpaca_map_fn\n\n\ndef my_map(example):\n    return example\n\n\n"
                    "train_dataloader = dict(batch_size=1, dataset=dict(dataset_map_fn=my_map))\n")
    cfg = Config.fromfile(str(path))
    register_function(settings(cfg))
    assert "my_map" in cfg.pretty_text


def test_datasets_reads_a_gzipped_jsonl_and_mixed_type_columns(tmp_path):
    """`.jsonl.gz`, which `validate` accepts because datasets reads it; and a field that is a number in some rows
    and text in others, which the installed datasets 5 reads (a Json column) but xtuner's pinned datasets 3.2
    does not: D011 is an error (the pin's failure: tests/test_training_install.py)."""
    import gzip

    from datasets import load_dataset

    rows = [{"text": "a", "x": 1}, {"text": "b", "x": "two"}]
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    loaded = load_dataset("json", data_files=str(path), cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded["text"] == ["a", "b"]


def test_C006_mmengine_refuses_a_cosine_that_begins_after_it_ends():
    import torch
    from mmengine.optim import CosineAnnealingLR

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="end should be larger than begin"):
        CosineAnnealingLR.build_iter_from_epoch(optimizer, eta_min=0.0, by_epoch=True, begin=4, end=3,
                                                epoch_length=10)


def _lrs_of_a_real_run(tmp_path, cosine: dict) -> list[float]:
    """Train a one-weight model with mmengine's Runner and xtuner's TrainLoop (3 epochs of 10 iterations)
    and record the learning rate of every iteration."""
    import torch
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.optim import CosineAnnealingLR, LinearLR
    from mmengine.runner import Runner
    from xtuner.engine.runner import TrainLoop

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def forward(self, inputs, mode="loss"):
            return {"loss": (self.weight * inputs.float()).sum()}

    seen = []

    class Record(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.append(runner.optim_wrapper.get_lr()["lr"][0])

    runner = Runner(
        model=Toy(), work_dir=str(tmp_path / "work"),
        train_dataloader=dict(dataset=[{"inputs": i} for i in range(10)], sampler=dict(type="DefaultSampler", shuffle=False),
                              batch_size=1, collate_fn=dict(type="default_collate")),
        train_cfg=dict(type=TrainLoop, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=1.0)),
        param_scheduler=[dict(type=LinearLR, start_factor=0.1, by_epoch=True, begin=0, end=0.3,
                              convert_to_iter_based=True),
                         dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=0.3,
                              convert_to_iter_based=True, **cosine)],
        custom_hooks=[Record()], default_hooks=dict(checkpoint=None, logger=None), default_scope="mmengine",
    )
    runner.train()
    return seen


def test_C007_a_cosine_with_T_max_and_no_end_freezes_the_lr_after_one_epoch(tmp_path):
    from xtuner_recipes.validate.schedule.lr import build

    frozen = _lrs_of_a_real_run(tmp_path / "a", {"T_max": 3})
    assert len(frozen) == 30 and len(set(frozen[10:])) == 1 and len(set(frozen[:10])) > 5  # stuck after epoch 1
    decaying = _lrs_of_a_real_run(tmp_path / "b", {"end": 3})
    assert len(set(decaying[10:])) == 20  # with end=max_epochs it decays to the last iteration
    # What validate's C007 reads: the same schedulers as mmengine builds them for this run.
    import torch  # noqa: F401 - build() needs it
    from mmengine.optim import CosineAnnealingLR, LinearLR

    spans = [(s.begin, s.end) for s in build(
        [dict(type=LinearLR, start_factor=0.1, by_epoch=True, begin=0, end=0.3, convert_to_iter_based=True),
         dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=0.3, T_max=3, convert_to_iter_based=True)],
        iters_per_epoch=10, max_epochs=3, epoch_loop=False)]
    assert spans == [(0, 3), (3, 10)]


def test_T005_xtuners_encode_fn_fails_on_a_tokenizer_without_bos(tokenizer_folders):
    """The T005 fixture's tokenizer (a Llama tokenizer saved without bos_token): xtuner's encode_fn adds
    `bos_token_id` (None) to every sample and raises TypeError."""
    from transformers import AutoTokenizer
    from xtuner.dataset.utils import encode_fn

    folder = tokenizer_folders["no-bos"]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.bos_token_id is None
    with pytest.raises(TypeError):
        encode_fn({"conversation": [{"input": "a question", "output": "an answer"}]}, tokenizer, 100)


def test_D010_datasets_fails_on_a_folder_given_as_data_files(tmp_path):
    from datasets import load_dataset

    folder = tmp_path / "rows"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"text": "hi"}])
    with pytest.raises(FileNotFoundError):
        load_dataset("json", data_files=str(folder), cache_dir=str(tmp_path / "hf"))


def test_M005_a_learned_position_table_fails_past_its_length_and_rotary_trains_past_it():
    """M005's two severities, on tiny random models: GPT-2 (a learned table of n_positions rows) fails on a
    sample one token longer; Llama (rotary) computes positions and trains past max_position_embeddings."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from xtuner_recipes.model_info import learned_positions

    torch.manual_seed(0)
    ids = torch.randint(0, 50, (1, 17))
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    with pytest.raises((IndexError, RuntimeError)):
        gpt2(ids, labels=ids)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=16))
    loss = llama(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert learned_positions(gpt2.config.to_dict()) and not learned_positions(llama.config.to_dict())


def test_L002_xtuners_deepseek_v2_code_fails_to_import_where_validate_says_so(cli):
    """xtuner 0.2.0's shipped DeepSeek-V2 configs import its own copy of the model's code, which imports a name the
    pinned transformers 4.48 no longer has: building the config's model class (what the Runner does) fails, and
    `validate --level load` says so with the import's line."""
    from mmengine.config import Config

    from xtuner_recipes.xtuner_info import source_dir

    path = source_dir() / "configs" / "deepseek" / "deepseek_v2_lite_chat" / "deepseek_v2_lite_chat_full_alpaca_e3.py"
    with pytest.raises(ImportError, match="is_torch_greater_or_equal_than_1_13"):
        Config.fromfile(str(path)).model.llm.type.build()
    done = cli("validate", path, "--level", "load", "--format", "json")
    found = [f for f in json.loads(done.stdout)[0]["findings"] if f["code"] == "L002"]
    assert done.returncode == 1 and len(found) == 1 and found[0]["severity"] == "error"
    assert "line 26" in found[0]["message"] and "trust_remote_code" in found[0]["hint"]


def test_the_datasets_library_cannot_read_a_row_nested_past_pythons_json_parser(tmp_path):
    """What `validate` (D002) and `prepare` call a bad row, the datasets library fails on too."""
    from datasets import load_dataset

    data = tmp_path / "deep.jsonl"
    data.write_text('{"text": "a"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(Exception, match="depth"):
        load_dataset("json", data_files=str(data), cache_dir=str(tmp_path / "cache"))
