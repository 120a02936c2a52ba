"""The launch's shape reaches the memory check: `train ... --deepspeed deepspeed_zero3` with NPROC_PER_NODE=8
validates at ZeRO-3 on 8 GPUs, reading the stage from the JSON preset xtuner's train script reads."""

import json
from pathlib import Path

import pytest

from xtuner_recipes.cli import main
from xtuner_recipes.cli.train import launch_of
from xtuner_recipes.errors import RecipeError
from xtuner_recipes.validate.inputs import Launch, Options
from xtuner_recipes.validate.runner import validate_config

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def full_finetune_7b(tmp_path_factory) -> Path:
    """A `gen oasst1` config made full fine-tuning (no LoRA, no 4-bit) of a model of internlm-chat-7b's shape."""
    from tiny_model import build_tiny_model

    folder = tmp_path_factory.mktemp("launch")
    model = build_tiny_model(folder / "model-7b", weights=False)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                  intermediate_size=11008)
    (model / "config.json").write_text(json.dumps(config))
    path = folder / "full.py"
    assert main(["gen", "oasst1", "--model", str(model), "--data", str(FIXTURES / "data" / "oasst1.jsonl"),
                 "-o", str(path)]) == 0
    assert main(["set", str(path), "~model.lora", "~model.llm.quantization_config", "--in-place"]) == 0
    return path


def launch_shape(args, environ):
    launch = launch_of(args, environ)
    return launch.stage, launch.gpus


def test_the_stage_is_read_from_xtuners_own_presets_and_files(tmp_path):
    assert launch_shape(["--deepspeed", "deepspeed_zero3"], {"NPROC_PER_NODE": "8"}) == (3, 8)
    assert launch_shape(["--deepspeed=deepspeed_zero2_offload"], {"NPROC_PER_NODE": "4", "NNODES": "2"}) == (2, 8)
    assert launch_shape(["--work-dir", "w"], {}) == (0, 1)
    mine = tmp_path / "ds.json"
    mine.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    assert launch_shape(["--deepspeed", str(mine)], {}) == (1, 1)
    with pytest.raises(RecipeError, match="no such file"):
        launch_shape(["--deepspeed", "deepspeed_zero9"], {})


def test_zero3_on_8_gpus_fits_where_one_gpus_copy_of_everything_does_not(full_finetune_7b):
    alone = validate_config(str(full_finetune_7b), launch=Launch(gpus=8, stage=0), options=Options(gpu_mem=80))
    sharded = validate_config(str(full_finetune_7b), launch=Launch(gpus=8, stage=3), options=Options(gpu_mem=80))
    assert "G001" in {f.code for f in alone.findings if f.severity == "error"}
    assert "G001" not in {f.code for f in sharded.findings}
    assert alone.stats["estimated_peak_gib"] > 80 > sharded.stats["estimated_peak_gib"]
    before, after = alone.stats["estimated_memory_gib"], sharded.stats["estimated_memory_gib"]
    assert after["optimizer_states"] == pytest.approx(before["optimizer_states"] / 8, rel=1e-3)


def test_train_refuses_the_unsharded_launch_before_it_starts(full_finetune_7b, monkeypatch, capsys):
    monkeypatch.setenv("NPROC_PER_NODE", "8")
    assert main(["train", "--gpu-mem", "80", str(full_finetune_7b)]) == 1
    err = capsys.readouterr().err
    assert "G001" in err and "not training" in err


def test_validate_reads_the_stage_of_the_launchs_deepspeed_preset(full_finetune_7b, capsys):
    def peak(*args):
        assert main(["validate", str(full_finetune_7b), "--format", "json", "--gpus", "8", "--gpu-mem", "80", *args]) in (0, 1)
        return json.loads(capsys.readouterr().out)[0]["stats"]["estimated_peak_gib"]

    assert peak("--deepspeed", "deepspeed_zero3") == peak("--zero-stage", "3") < peak()
    assert main(["validate", str(full_finetune_7b), "--deepspeed", "deepspeed_zero9"]) == 2


def test_a_multi_node_launch_without_port_is_a_warning(full_finetune_7b, monkeypatch, capsys):
    import copy
    import os

    # what datasets' map(num_proc=...) leaves behind in a process: os.environ rebound to a copy of itself
    monkeypatch.setattr(os, "environ", copy.deepcopy(os.environ))
    for name in ("PORT", "ADDR", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNODES", "2")
    main(["validate", str(full_finetune_7b), "--format", "json"])
    (e010,) = [f for f in json.loads(capsys.readouterr().out)[0]["findings"] if f["code"] == "E010"]
    assert e010["severity"] == "warning" and "PORT" in e010["message"]
    monkeypatch.setenv("PORT", "29500"), monkeypatch.setenv("ADDR", "10.0.0.1"), monkeypatch.setenv("NODE_RANK", "1")
    main(["validate", str(full_finetune_7b), "--format", "json"])
    assert "E010" not in {f["code"] for f in json.loads(capsys.readouterr().out)[0]["findings"]}


def test_plan_launches_with_the_preset_it_is_given(full_finetune_7b, capsys):
    assert main(["plan", str(full_finetune_7b), "--gpus", "8", "--deepspeed", "deepspeed_zero3"]) == 0
    text = capsys.readouterr().out
    assert "NPROC_PER_NODE=8 xtuner train" in text and "--deepspeed deepspeed_zero3" in text
    assert main(["plan", str(full_finetune_7b), "--deepspeed", "none"]) == 0
    assert "--deepspeed" not in capsys.readouterr().out.split("xtuner train", 1)[1].splitlines()[0]


def test_plan_over_two_nodes_prints_one_command_a_node_with_the_same_address_and_port(full_finetune_7b, capsys):
    assert main(["plan", str(full_finetune_7b), "--gpus", "8", "--nodes", "2", "--addr", "10.0.0.1", "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    trains = [s["command"] for s in steps if s["title"].startswith("train")]
    assert len(trains) == 2
    for rank, command in enumerate(trains):
        assert f"NNODES=2 NODE_RANK={rank} ADDR=10.0.0.1 PORT=29500" in command and "--deepspeed deepspeed_zero2" in command
    assert main(["plan", str(full_finetune_7b), "--gpus", "8", "--nodes", "2"]) == 0
    text = capsys.readouterr().out
    assert "ADDR=NODE0_ADDRESS" in text and "replace NODE0_ADDRESS" in text


def test_the_text_report_says_whether_it_fits_the_card_in_words(full_finetune_7b, capsys):
    main(["validate", str(full_finetune_7b), "--gpus", "8", "--gpu-mem", "80", "--deepspeed", "none"])
    out = capsys.readouterr().out
    assert "does not fit a 80 GiB card" in out and "for a launch without DeepSpeed on 8 GPUs" in out
    main(["validate", str(full_finetune_7b), "--gpus", "8", "--gpu-mem", "80", "--deepspeed", "deepspeed_zero3"])
    out = capsys.readouterr().out  # (the 2-row fixture's warmup of zero iterations is an error of its own)
    assert "memory: " in out and ": fits a 80 GiB card with " in out and " GiB to spare; the smallest common card it fits is" in out
    assert "for --deepspeed deepspeed_zero3 (ZeRO-3) on 8 GPUs" in out


@pytest.mark.parametrize("nodes", [1, 2, 4])
def test_plan_slurm_writes_one_sbatch_script_that_bash_parses(cli, tmp_path, tiny_model, nodes):
    """`plan --launcher slurm`: the same bytes run after run, `bash -n` parses it, one task a GPU on every node, a
    port of the job's own, xtuner's train script itself (its exit status is training's), the config's hash; -o
    never replaces a file without --force."""
    import hashlib
    import subprocess

    from xtuner_recipes.slurm import PORT_BASE, PORT_SPAN

    for recipe in ("oasst1", "medqa", "msagent"):
        data = tmp_path / f"{recipe}.jsonl"
        data.write_text((FIXTURES / "data" / {"medqa": "medqa_us.jsonl"}.get(recipe, f"{recipe}.jsonl")).read_text())
        config = tmp_path / f"{recipe}.py"
        cli("gen", recipe, "--model", tiny_model, "--data", data, "-o", config, check_rc=0)
        first = cli("plan", config, "--gpus", 8, "--nodes", nodes, "--launcher", "slurm", check_rc=0).stdout
        again = cli("plan", config, "--gpus", 8, "--nodes", nodes, "--launcher", "slurm", check_rc=0).stdout
        assert first == again
        script = tmp_path / f"{recipe}-{nodes}.sbatch"
        script.write_text(first)
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
        lines = first.splitlines()
        assert f"#SBATCH --nodes={nodes}" in lines and "#SBATCH --ntasks-per-node=8" in lines
        assert f"export MASTER_PORT=$(( {PORT_BASE} + SLURM_JOB_ID % {PORT_SPAN} ))" in lines
        assert f"# config sha256: {hashlib.sha256(config.read_bytes()).hexdigest()}" in lines
        (train,) = [line for line in lines if line.startswith("srun ")]
        assert f"python -m xtuner.tools.train {config} --launcher slurm --deepspeed deepspeed_zero2" in train
        # the converters by their scripts too: `xtuner convert` exits 0 when it fails, and the job would go on
        convert = next(i for i, line in enumerate(lines) if "pth_to_hf" in line)
        assert lines.index(train) < convert and lines[convert].startswith("python -m xtuner.tools.model_converters.")
        assert lines[convert + 1].startswith("python -m xtuner.tools.model_converters.merge ")
    written = cli("plan", config, "--launcher", "slurm", "-o", tmp_path / "job.sbatch", check_rc=0)
    assert "sbatch " in written.stdout and (tmp_path / "job.sbatch").read_text().startswith("#!/bin/bash")
    refused = cli("plan", config, "--launcher", "slurm", "-o", tmp_path / "job.sbatch")
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert cli("plan", config, "-o", tmp_path / "other.sbatch").returncode == 2  # -o is the slurm script's


def test_several_gpus_get_a_time_with_the_gradient_exchange_modelled(full_finetune_7b):
    """Over several GPUs an iteration is each GPU's own plus the gradients' ring all-reduce, 2(n-1)/n of the LoRA
    weights' 16-bit bytes under ZeRO-2, over the cards' link in one machine and the (slower) network between
    machines; a ZeRO-3 launch (never measured) says so."""
    from xtuner_recipes.model_info import read_config
    from xtuner_recipes.validate.estimate import cards
    from xtuner_recipes.validate.estimate.count import arch_of

    qlora = full_finetune_7b.with_name("qlora.py")  # the same gen oasst1 config, LoRA r=64 on 4-bit kept
    assert main(["gen", "oasst1", "--model", str(full_finetune_7b.parent / "model-7b"), "--data",
                 str(FIXTURES / "data" / "oasst1.jsonl"), "-o", str(qlora), "--force"]) == 0

    def stats(preset, gpus, nodes=1):
        return validate_config(str(qlora), launch=Launch.from_preset(preset, gpus=gpus, nodes=nodes),
                               options=Options(gpu="h100")).stats

    one, eight, sixteen = stats("deepspeed_zero2", 1), stats("deepspeed_zero2", 8), stats("deepspeed_zero2", 16, 2)
    assert "exchange" not in one["seconds_per_iter_parts"]
    trained = arch_of(read_config(str(full_finetune_7b.parent / "model-7b")))[0].lora_params(64, None)
    h100 = cards.find("h100")
    assert eight["seconds_per_iter_parts"]["exchange"] == pytest.approx(
        2 * 7 / 8 * trained * 2 / (h100.link_gbs * 1e9), rel=0.02, abs=1e-4)
    assert sixteen["seconds_per_iter_parts"]["exchange"] == pytest.approx(
        2 * 15 / 16 * trained * 2 / (cards.NETWORK_GBS * 1e9), rel=0.02, abs=1e-4)
    assert sixteen["seconds_per_iter_parts"]["exchange"] > 10 * eight["seconds_per_iter_parts"]["exchange"]
    assert "on 16 GPUs over 2 machines" in sixteen["time_basis"] and "modelled, not measured" in sixteen["time_basis"]
    assert sixteen["time_gpus"] == 16 and sixteen["run_parts_s"]["iterations"][0] > 0
    zero3 = stats("deepspeed_zero3", 8)
    assert "seconds_per_iter" not in zero3 and zero3["time_basis"] == "not estimated: measured at ZeRO stage 0 and 2 only"


def test_a_mixture_of_experts_is_launched_with_expandable_segments(tmp_path, tiny_model, cli):
    """Experts get a different number of tokens every step and PyTorch's default allocator fragments (the
    Qwen1.5-MoE shape: 34.1 GiB reserved for 28.3 allocated; 31.2 with expandable segments, 2% under the estimate):
    gen's next step, validate (G003, stats.expandable_segments) and plan give the launch with expandable segments."""
    import shutil

    from xtuner_recipes.model_info import routes_to_experts
    from xtuner_recipes.plan import EXPANDABLE

    model = tmp_path / "tiny-moe"
    shutil.copytree(tiny_model, model, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    config = json.loads((model / "config.json").read_text())
    config.update(model_type="mixtral", architectures=["MixtralForCausalLM"], num_local_experts=4,
                  num_experts_per_tok=2)
    (model / "config.json").write_text(json.dumps(config))
    assert routes_to_experts(config) and not routes_to_experts(json.loads((tiny_model / "config.json").read_text()))
    generated = cli("gen", "oasst1", "--model", model, "--data", FIXTURES / "data" / "oasst1.jsonl", "-o",
                    tmp_path / "moe.py", "--json", check_rc=0)
    assert EXPANDABLE in json.loads(generated.stdout)["next"]
    report = json.loads(cli("validate", tmp_path / "moe.py", "--format", "json").stdout)[0]
    assert report["stats"]["expandable_segments"] is True and report["stats"]["packed"] is True
    assert any(f["code"] == "G003" and "mixture of experts" in f["message"] for f in report["findings"])
    plan = json.loads(cli("plan", tmp_path / "moe.py", "--json", check_rc=0).stdout)
    assert plan["steps"][0]["command"].startswith(EXPANDABLE + " xtuner train ")
    assert any("routes tokens to experts" in note for note in plan["notes"])
    # the fields alone say what the counted model says, for every model of the bundled hub table it can build
    from xtuner_recipes.validate.estimate.count import arch_of

    table = json.loads((Path(__file__).parents[1] / "xtuner_recipes" / "hub_models.json").read_text())
    built = [(name, arch_of(config)[0]) for name, config in table.items() if isinstance(config, dict)]
    checked = [(name, arch.moe, routes_to_experts(table[name])) for name, arch in built if arch is not None]
    assert len(checked) >= 20 and sum(moe for _, moe, _ in checked) >= 3
    assert all(moe == said for _, moe, said in checked), checked
