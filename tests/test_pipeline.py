"""The whole pipeline on the CPU: gen → validate → smoke (train, pth_to_hf, merge, chat), plan, train.

Each recipe's config trains for real on a tiny random model built by the tests.
"""

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, load_config, write_jsonl
from xtuner_recipes.smoke.chat import build_prompt
from xtuner_recipes.smoke.tiny import shrink


def medqa_rows(count, *, broken=False):
    rows = [{"question": f"Which drug treats condition {i}?", "options": {"A": f"drug a{i}", "B": f"drug b{i}"},
             "answer_idx": "A", "answer": f"drug a{i}", "meta_info": "step1"} for i in range(count)]
    if broken:
        del rows[3]["options"]
    return rows


def recipe_data(recipe, folder: Path) -> Path:
    if recipe == "medqa":
        return write_jsonl(folder / "medqa.jsonl", medqa_rows(40))
    name = {"oasst1": "oasst1.jsonl", "msagent": "msagent.jsonl"}[recipe]
    rows = (FIXTURES / "data" / name).read_text(encoding="utf-8").splitlines()
    path = folder / name
    path.write_text("\n".join(rows * 15) + "\n", encoding="utf-8")
    return path


def gen(cli, recipe, model, data, out, *sets):
    # MS-Agent's system prompts carry tool schemas: about 700-1000 tokens with the tiny tokenizer.
    length = "max_length=1536" if recipe == "msagent" else "max_length=512"
    args = [x for s in (length, *sets) for x in ("--set", s)]
    cli("gen", recipe, "--model", model, "--data", data, "-o", out, *args, check_rc=0)
    return out


def smoke_json(cli, config, *args):
    result = cli("smoke", config, "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.mark.slow
# MedQA's config is smoked by the README's example (tests/test_readme.py) and over two nodes (tests/test_nodes.py),
# OASST1's by the tutorial's path below
@pytest.mark.parametrize("recipe", ["msagent"])
def test_generated_config_validates_and_survives_smoke(recipe, tmp_path, tiny_model, cli):
    # MedQA packs its 40 rows; the other fixtures are too short to pack into enough samples for a warmup.
    sets = () if recipe == "medqa" else ("pack_to_max_length=False", "warmup_ratio=0.1")
    config = gen(cli, recipe, tiny_model, recipe_data(recipe, tmp_path), tmp_path / f"{recipe}.py", *sets)
    cli("validate", config, check_rc=0)
    rc, result = smoke_json(cli, config, "--steps", "3")
    stages = {stage["name"]: stage for stage in result["stages"]}
    assert rc == 0 and result["ok"], [(s["name"], s["status"], s["detail"], s["log_tail"]) for s in result["stages"]]
    assert list(stages) == ["model", "train", "pth_to_hf", "merge", "chat"]
    assert all(stage["status"] == "passed" for stage in stages.values())
    assert len(result["losses"]) == 3 and all(math.isfinite(loss) for loss in result["losses"])
    assert result["checkpoint"].endswith("iter_3.pth")
    assert isinstance(result["reply"], str)
    # a config that accumulates gradients over more iterations than ran makes one optimizer step, said so
    accumulate = load_config(config).optim_wrapper.get("accumulative_counts", 1)
    assert stages["train"]["detail"].startswith("3 iterations, loss ")
    said = f"(1 optimizer step: accumulative_counts={accumulate} sums the gradients of {accumulate} iterations"
    assert (said in stages["train"]["detail"]) == (accumulate > 3), (accumulate, stages["train"]["detail"])
    # On a CPU the run says what it changed: no 4-bit, no AMP wrapper.
    assert any("quantization_config removed" in note for note in result["adaptations"])
    assert any("AmpOptimWrapper → OptimWrapper" in note for note in result["adaptations"])


@pytest.mark.slow
def test_smoke_names_the_failing_stage_on_broken_data(tmp_path, tiny_model, cli):
    data = write_jsonl(tmp_path / "broken.jsonl", medqa_rows(40, broken=True))
    config = gen(cli, "medqa", tiny_model, data, tmp_path / "broken.py")
    text = cli("smoke", config, "--steps", "2")  # as a user reads it (--json's form: the other smoke tests)
    assert text.returncode == 1 and "stage 'train' failed" in text.stdout and "FAILED: 1/5" in text.stdout
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in text.stdout.splitlines()
            if line.split()[:1] and line.split()[0] in ("model", "train", "pth_to_hf", "merge", "chat")}
    assert {name: row[0] for name, row in rows.items()} == {"model": "passed", "train": "failed",
                                                            "pth_to_hf": "skipped", "merge": "skipped",
                                                            "chat": "skipped"}, text.stdout
    assert "MedQAFormatError" in rows["train"][1] and "options" in rows["train"][1], rows["train"]


def test_smoke_keep_refuses_a_folder_with_files(tmp_path, tiny_model, cli):
    config = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "m.py")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("mine")
    result = cli("smoke", config, "--keep", keep)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert (keep / "precious.txt").read_text() == "mine" and len(list(keep.iterdir())) == 1


def test_smoke_stops_on_what_xtuner_would_stop_on_before_any_stage(tmp_path, tiny_model, cli):
    """A config with a static or load error (here S003: batch_size 0, which torch's sampler refuses) gets its
    findings and exit 1 in seconds, not a failing train stage after the model stage."""
    config = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "m.py")
    config.write_text(config.read_text().replace("batch_size = 1", "batch_size = 0"))
    keep = tmp_path / "keep"
    result = cli("smoke", config, "--keep", keep, "--json")
    found = json.loads(result.stdout)
    assert result.returncode == 1 and [f["code"] for f in found["findings"]] == ["S003"]
    assert all(stage["status"] == "skipped" for stage in found["stages"]) and not keep.exists()
    text = cli("smoke", config)
    assert text.returncode == 1 and "S003 [batch_size]" in text.stdout and "0/5 stages passed" in text.stdout


def test_smoke_deepspeed_is_checked_before_any_stage(tmp_path, tiny_model, cli):
    config = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "m.py")
    keep = tmp_path / "keep"
    result = cli("smoke", config, "--deepspeed", "deepspeed_zero2", "--keep", keep)
    assert result.returncode == 2 and "DeepSpeed trains on a GPU only" in result.stderr and "--device cuda" in result.stderr
    result = cli("smoke", config, "--deepspeed", "deepspeed_zero9", "--keep", keep)
    assert result.returncode == 2 and "deepspeed_zero9" in result.stderr
    assert not keep.exists()  # nothing ran, nothing was made


def test_smoke_trains_with_the_deepspeed_arguments_xtuner_reads(monkeypatch):
    """The train stage's arguments as xtuner's own train script parses them, and the one-process
    rendezvous DeepSpeed's init needs (xtuner train without a launcher sets none)."""
    import xtuner.tools.train as xtuner_train

    from xtuner_recipes.smoke.worker import train_argv

    plan = {"config": "cfg.py", "work_dir": "/w", "deepspeed": "deepspeed_zero3"}
    environ = {}
    monkeypatch.setattr(sys, "argv", ["train", *train_argv(plan, environ)])
    args = xtuner_train.parse_args()
    assert (args.config, args.work_dir, args.deepspeed) == ("cfg.py", "/w", "deepspeed_zero3")
    assert environ["RANK"] == environ["LOCAL_RANK"] == "0" and environ["WORLD_SIZE"] == "1"
    assert 0 < int(environ["MASTER_PORT"]) < 65536
    kept = {"MASTER_PORT": "29555"}
    train_argv(plan, kept)
    assert kept["MASTER_PORT"] == "29555"
    plain = {}
    monkeypatch.setattr(sys, "argv", ["train", *train_argv(plan | {"deepspeed": None}, plain)])
    assert xtuner_train.parse_args().deepspeed is None and plain == {}


def test_smoke_needs_a_local_model(tmp_path, cli):
    config = tmp_path / "hub.py"
    cli("gen", "medqa", "--model", "internlm/internlm-chat-7b", "-o", config, check_rc=0)
    result = cli("smoke", config)
    assert result.returncode == 2 and "hub.py:" in result.stderr and "not a local model folder" in result.stderr


@pytest.mark.slow
def test_plan_names_the_checkpoints_a_real_run_writes(tmp_path, tiny_model, cli):
    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_rows(12))
    config = gen(cli, "medqa", tiny_model, data, tmp_path / "short.py", "pack_to_max_length=False",
                 "max_epochs=1", "save_steps=5", "save_total_limit=-1", "warmup_ratio=0.1")
    plan = json.loads(cli("plan", config, "--json", check_rc=0).stdout)
    assert plan["checkpoint"] == "./work_dirs/short/iter_12.pth"
    assert plan["stats"]["checkpoints"] == ["iter_5.pth", "iter_10.pth", "iter_12.pth"]
    keep = tmp_path / "run"
    rc, result = smoke_json(cli, config, "--steps", "all", "--keep", keep)
    assert rc == 0, result
    written = sorted(p.name for p in (keep / "train").glob("iter_*.pth"))
    assert written == sorted(plan["stats"]["checkpoints"])
    assert Path(result["checkpoint"]).name == Path(plan["checkpoint"]).name
    for log in keep.glob("*.log"):  # no runpy warning heading the stages' logs
        assert "found in sys.modules after import of package" not in log.read_text(), log.name


def test_plan_prints_every_command(tmp_path, tiny_model, cli):
    config = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "medqa.py")
    text = cli("plan", config, check_rc=0).stdout
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"xtuner train {config} --deepspeed deepspeed_zero2"  # gen's next step is this, through xtuner-recipes train
    stats = json.loads(cli("plan", config, "--json", check_rc=0).stdout)["stats"]
    if stats.get("checkpoints_vary"):  # packed after a shuffle: the count, and the last name, vary by run
        assert lines[1] == "./work_dirs/medqa/iter_<N>.pth"
        assert lines[2] == (f'xtuner convert pth_to_hf {config} "$(cat ./work_dirs/medqa/last_checkpoint)" '
                            "./work_dirs/medqa/hf_adapter")
    else:
        assert re.fullmatch(r"\./work_dirs/medqa/iter_\d+\.pth", lines[1])
        assert lines[2] == f"xtuner convert pth_to_hf {config} {lines[1]} ./work_dirs/medqa/hf_adapter"
    assert lines[3].startswith(f"xtuner convert merge {tiny_model} ./work_dirs/medqa/hf_adapter ./work_dirs/medqa/merged")
    assert lines[4].startswith("xtuner chat ./work_dirs/medqa/merged --prompt-template llama2_chat --system ")
    assert lines[5] == f"xtuner chat {tiny_model} --adapter ./work_dirs/medqa/hf_adapter" + lines[4].split("merged", 1)[1]
    assert "end it with an empty line" in text and "download" not in text  # the model is a local folder
    several = cli("plan", config, "--gpus", "8", check_rc=0).stdout
    assert f"NPROC_PER_NODE=8 xtuner train {config} --deepspeed deepspeed_zero2" in several
    assert "--gpus 8 --in-place" in several  # the global batch grew 8x: say how to keep it
    # --work-dir reaches the train command, and every path is quoted for the shell.
    odd = cli("plan", config, "--work-dir", "./my runs; rm -rf x", check_rc=0).stdout
    assert "--work-dir './my runs; rm -rf x'" in odd
    assert "xtuner convert pth_to_hf" in odd and "'./my runs; rm -rf x/hf_adapter'" in odd


def test_plan_for_msagent_hints_lagent(tmp_path, tiny_model, cli):
    config = gen(cli, "msagent", tiny_model, recipe_data("msagent", tmp_path), tmp_path / "agent.py",
                 "pack_to_max_length=False")
    chat = cli("plan", config, check_rc=0).stdout.strip().splitlines()
    assert any(line.startswith("xtuner chat") and line.endswith("--lagent") for line in chat)
    assert "SERPER_API_KEY" in "\n".join(chat) and "pip install lagent" in "\n".join(chat)
    other = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "msagent_named.py")
    assert "--lagent" not in cli("plan", other, check_rc=0).stdout  # the mapper decides, not the file name


def test_plan_for_a_hub_model_says_how_to_download_it(tmp_path, tiny_model, cli):
    config = gen(cli, "oasst1", "internlm/internlm-chat-7b", recipe_data("oasst1", tmp_path), tmp_path / "hub.py")
    steps = json.loads(cli("plan", config, "--json", check_rc=0).stdout)["steps"]
    assert steps[0]["command"] == "huggingface-cli download internlm/internlm-chat-7b --local-dir ./internlm-chat-7b"
    assert "modelscope download --model internlm/internlm-chat-7b" in steps[0]["note"]


@pytest.mark.slow
def test_train_returns_the_real_exit_status(tmp_path, tiny_model, cli):
    data = write_jsonl(tmp_path / "broken.jsonl", medqa_rows(40, broken=True))
    config = gen(cli, "medqa", tiny_model, data, tmp_path / "broken.py")
    checked = cli("train", config, "--work-dir", tmp_path / "a")
    assert checked.returncode == 1 and "not training" in checked.stderr and "D003" in checked.stderr
    unchecked = cli("train", "--validate-level", "static", config, "--work-dir", tmp_path / "b")
    assert unchecked.returncode == 3 and "training failed" in unchecked.stderr
    good = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "good.py")
    skipped = cli("train", "--skip-doctor", good, "--work-dir", tmp_path / "d")  # no GPU: 4-bit fails in xtuner
    assert skipped.returncode == 3 and "validated (full)" in skipped.stderr
    assert "warning E00" in checked.stderr  # train prints validate's warnings, not only its errors
    xtuner = shutil.which("xtuner", path=str(Path(sys.executable).parent))
    theirs = subprocess.run([xtuner, "train", str(config), "--work-dir", str(tmp_path / "c")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert theirs.returncode == 0  # the trap this command exists for


def test_train_refuses_a_machine_doctor_says_cannot_launch(tmp_path, tiny_model, cli):
    """A config without errors on a machine without a GPU (this one): validate's machine verdict says so, with
    the fixes, and `train` stops there (exit 2) unless --skip-doctor."""
    config = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "m.py")
    report = json.loads(cli("validate", config, "--format", "json").stdout)[0]
    assert report["ok"] and report["machine"]["ok"] is False
    assert "E001" in [p["code"] for p in report["machine"]["problems"]]
    assert "this machine: cannot launch it now" in cli("validate", config).stdout
    # the launch validate checks by default, the tutorial's: --deepspeed deepspeed_zero2 (without it, deepspeed
    # would not be needed, and E003 would not be among the problems)
    refused = cli("train", config, "--work-dir", tmp_path / "w", "--deepspeed", "deepspeed_zero2")
    assert refused.returncode == 2 and "not training: this machine cannot launch" in refused.stderr
    assert "--skip-doctor" in refused.stderr and not (tmp_path / "w").exists()
    fixes = [p["fix"] for p in report["machine"]["problems"] if p["fix"]]
    assert fixes and all(f"fix: {fix}" in refused.stderr for fix in fixes)


def test_gen_gpus_keeps_the_global_batch(tmp_path, tiny_model, cli):
    out = tmp_path / "g8.py"
    result = cli("gen", "medqa", "--model", tiny_model, "--gpus", "8", "-o", out, check_rc=0)
    assert "accumulative_counts 16 → 2 for 8 GPU(s): global batch 1 × 2 × 8 = 16" in result.stderr
    assert "NPROC_PER_NODE=8 xtuner-recipes train" in result.stdout
    from conftest import load_config

    assert load_config(out).optim_wrapper.accumulative_counts == 2
    odd = cli("gen", "medqa", "--model", tiny_model, "--gpus", "3", "-o", tmp_path / "g3.py", check_rc=0)
    assert "= 15 (1-GPU global batch was 16" in odd.stderr
    edited = cli("set", out, "--gpus", "2", "--diff", check_rc=0)
    assert "-accumulative_counts = 2" in edited.stdout and "+accumulative_counts = 1" in edited.stdout


def test_shrink_keeps_the_architecture_and_grouped_attention():
    config = {"model_type": "internlm2", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 92544, "head_dim": 128}
    small, changes = shrink(config)
    assert (small["hidden_size"], small["num_hidden_layers"], small["num_attention_heads"]) == (64, 2, 4)
    assert small["num_key_value_heads"] == 2 and small["head_dim"] == 16
    assert small["vocab_size"] == 92544 and small["model_type"] == "internlm2"  # the real tokenizer still fits
    assert "num_hidden_layers 32 → 2" in changes and config["hidden_size"] == 4096


def test_chat_prompt_follows_the_template():
    template = {"SYSTEM": "<|System|>:{system}\n", "INSTRUCTION": "<|User|>:{input}\n<|Bot|>:"}
    assert build_prompt(template, "hi", "be kind") == "<|System|>:be kind\n<|User|>:hi\n<|Bot|>:"
    assert build_prompt(template, "hi", "") == "<|User|>:hi\n<|Bot|>:"


@pytest.mark.slow
def test_tutorial_path_with_relative_paths_and_an_0_1_x_config_survives_smoke(tmp_path, tiny_model, cli):
    """The README's flow from one folder, relative paths as written: gen OASST1 (the tutorial's first dataset) with
    `./oasst1/train.jsonl`, validate, the tutorial's hand edits of xtuner 0.1.x (an epoch-based loop,
    PagedAdamW32bit), then smoke --keep ./smoke-run: every stage passes, and the run says what it changed."""
    shutil.copytree(tiny_model, tmp_path / "internlm-chat-7b")
    (tmp_path / "oasst1").mkdir()
    recipe_data("oasst1", tmp_path / "oasst1").rename(tmp_path / "oasst1" / "train.jsonl")
    # the fixture's rows are too short to pack into enough samples for a warmup: unpacked
    cli("gen", "oasst1", "--model", "./internlm-chat-7b", "--data", "./oasst1/train.jsonl", "-o", "cfg.py",
        *[x for s in ("max_length=512", "pack_to_max_length=False", "warmup_ratio=0.1") for x in ("--set", s)],
        check_rc=0)
    cli("validate", "cfg.py", check_rc=0)
    config = tmp_path / "cfg.py"
    text = config.read_text()
    for old, new in (("train_cfg = dict(type=TrainLoop, max_epochs=max_epochs)",
                      "train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)"),
                     ("from torch.optim import AdamW", "from bitsandbytes.optim import PagedAdamW32bit"),
                     ("optim_type = AdamW", "optim_type = PagedAdamW32bit"),
                     ("checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=save_steps, "
                      "max_keep_ckpts=save_total_limit)", "checkpoint=dict(type=CheckpointHook, interval=1)")):
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    rc, result = smoke_json(cli, "cfg.py", "--steps", "2", "--keep", "./smoke-run")
    stages = {stage["name"]: stage for stage in result["stages"]}
    assert rc == 0 and result["ok"], [(s["name"], s["status"], s["detail"], s["log_tail"]) for s in result["stages"]]
    assert list(stages) == ["model", "train", "pth_to_hf", "merge", "chat"]
    assert all(stage["status"] == "passed" for stage in stages.values())
    assert result["losses"] and all(math.isfinite(loss) for loss in result["losses"])
    assert result["checkpoint"].endswith("epoch_1.pth") and isinstance(result["reply"], str)
    # a config that accumulates gradients over more iterations than ran makes one optimizer step, said so
    accumulate = load_config(config).optim_wrapper.get("accumulative_counts", 1)
    ran = len(result["losses"])
    assert stages["train"]["detail"].startswith(f"{ran} iterations, loss ")
    said = f"(1 optimizer step: accumulative_counts={accumulate} sums the gradients of {accumulate} iterations"
    assert (said in stages["train"]["detail"]) == (accumulate > ran), (accumulate, stages["train"]["detail"])
    # what the run changed: the epoch loop cut to one epoch, the paged optimizer, and on a CPU no 4-bit, no AMP
    assert any("max_epochs=1" in note for note in result["adaptations"])
    assert any("PagedAdamW32bit" in note for note in result["adaptations"])
    assert any("quantization_config removed" in note for note in result["adaptations"])
    assert any("AmpOptimWrapper → OptimWrapper" in note for note in result["adaptations"])
    assert (tmp_path / "smoke-run" / "plan.json").is_file()


def test_smoke_says_the_reply_of_random_weights_is_gibberish():
    from xtuner_recipes.cli.smoke import render_text
    from xtuner_recipes.smoke.runner import SmokeResult, Stage

    stages = [Stage(name, "passed", 1.0) for name in ("model", "train", "pth_to_hf", "merge", "chat")]
    text = render_text(SmokeResult(config="c.py", device="cpu", steps=4, stages=stages, reply="zq zq"))
    assert "random weights: gibberish is expected" in text and "5/5 stages passed" in text
    assert "gibberish" not in render_text(SmokeResult(config="c.py", device="cpu", steps=4, stages=stages[:1]))


def test_train_over_several_nodes_refuses_without_port_and_addr(tmp_path, tiny_model, cli, monkeypatch):
    """NNODES=2 without PORT and ADDR: xtuner would take a random port on each node and 127.0.0.1, and the nodes
    would never meet; `train` refuses before launching (even with --skip-doctor), with the settings to give."""
    config = gen(cli, "medqa", tiny_model, recipe_data("medqa", tmp_path), tmp_path / "n.py")
    monkeypatch.setenv("NNODES", "2")
    for name in ("PORT", "ADDR", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    refused = cli("train", "--skip-doctor", config, "--work-dir", tmp_path / "w")
    assert refused.returncode == 2 and "a launch over 2 nodes without PORT, ADDR, NODE_RANK set" in refused.stderr
    assert "fix: on every node: NNODES=2 NODE_RANK=<0..1>" in refused.stderr and not (tmp_path / "w").exists()
