"""`smoke --nodes M --gpus N`: plan's own launch commands for several processes, run on this machine (gloo on the
CPU), with each node's exit status and what each rank trained; a killed rank or a missing data file fails it.

The Slurm form (plan's sbatch script, submitted to a real one-host Slurm) is in test_slurm.py."""

import json
import os
import re
import signal
import threading
import time

import pytest
from conftest import write_jsonl

pytestmark = pytest.mark.slow


def medqa_config(cli, tiny_model, folder):
    rows = [{"question": f"Which drug treats condition {i}?", "options": {"A": f"drug a{i}", "B": f"drug b{i}"},
             "answer_idx": "A", "answer": f"drug a{i}", "meta_info": "step1"} for i in range(40)]
    data = write_jsonl(folder / "medqa.jsonl", rows)
    config = folder / "medqa.py"
    cli("gen", "medqa", "--model", tiny_model, "--data", data, "-o", config, "--set", "max_length=512", check_rc=0)
    return config, data


def test_smoke_over_two_nodes_runs_plans_commands_and_the_ranks_train_one_model(tmp_path, tiny_model, cli):
    config, _ = medqa_config(cli, tiny_model, tmp_path)
    keep = tmp_path / "run"
    result = cli("smoke", config, "--nodes", "2", "--keep", keep, "--json")
    smoke = json.loads(result.stdout)
    assert result.returncode == 0 and smoke["ok"], [(s["name"], s["detail"], s["log_tail"]) for s in smoke["stages"]]
    assert [stage["name"] for stage in smoke["stages"]] == ["model", "train", "pth_to_hf"]
    # the commands that ran are the ones `plan --nodes 2` prints for this launch, byte for byte
    port = re.search(r"PORT=(\d+) ", smoke["launch"][0]["command"]).group(1)
    planned = cli("plan", config, "--nodes", "2", "--addr", "127.0.0.1", "--port", port, "--deepspeed", "none",
                  "--work-dir", keep / "train", "--json", check_rc=0)
    steps = json.loads(planned.stdout)["steps"]
    assert [item["command"] for item in smoke["launch"]] == [s["command"] for s in steps if s["title"].startswith("train")]
    assert [item["exit_status"] for item in smoke["launch"]] == [0, 0]
    # two processes in one gloo group, each on its own node, ending with the same weights: one model, trained
    # together (a rank training alone on its half of the data would end elsewhere)
    ranks = smoke["ranks"]
    assert [(r["rank"], r["node"], r["world_size"], r["backend"]) for r in ranks] == [(0, 0, 2, "gloo"), (1, 1, 2, "gloo")]
    assert ranks[0]["trainable_sha256"] == ranks[1]["trainable_sha256"] and ranks[0]["iterations"] == 4
    assert smoke["checkpoint"].endswith("iter_4.pth")
    assert (keep / "train" / "hf_adapter" / "adapter_config.json").is_file()
    assert any("gloo" in note for note in smoke["adaptations"])


def _kill_when_training(ranks, rank, killed):
    record = ranks / f"rank{rank}.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not record.is_file():
        time.sleep(0.1)
    if record.is_file():
        os.kill(json.loads(record.read_text())["pid"], signal.SIGKILL)
        killed.append(rank)


def test_a_killed_rank_fails_the_smoke_and_is_named(tmp_path, tiny_model, cli):
    from xtuner_recipes.cli.smoke import render_text
    from xtuner_recipes.smoke import run_smoke

    config, _ = medqa_config(cli, tiny_model, tmp_path)
    keep, killed = tmp_path / "run", []
    killer = threading.Thread(target=_kill_when_training, args=(keep / "ranks", 1, killed))
    killer.start()
    result = run_smoke(config, steps=60, nodes=2, keep=keep)
    killer.join()
    assert killed == [1]
    train = next(stage for stage in result.stages if stage.name == "train")
    assert not result.ok and train.status == "failed"
    by_node = {item["node"]: item["exit_status"] for item in result.launch}
    assert by_node[1] != 0 and by_node[0] != 0, result.launch  # rank 0 cannot go on without rank 1
    assert "node 1: exit" in render_text(result) and "rank 1: killed by signal 9 (SIGKILL)" in train.detail, train.detail
    assert not (keep / "train" / "hf_adapter").exists()  # nothing converted after a failed launch


def test_a_data_file_missing_when_the_nodes_start_fails_the_smoke(tmp_path, tiny_model, cli):
    from xtuner_recipes.smoke import run_smoke

    config, data = medqa_config(cli, tiny_model, tmp_path)

    def lose_the_data(stage):  # after validate read it and the tiny model is built: gone when training starts
        if stage.name == "model":
            data.unlink()

    start = time.monotonic()
    result = run_smoke(config, steps=4, nodes=2, keep=tmp_path / "run", progress=lose_the_data)
    train = next(stage for stage in result.stages if stage.name == "train")
    assert not result.ok and train.status == "failed" and result.launch[0]["exit_status"] != 0
    assert "rank 0: FileNotFoundError: " in train.detail and "medqa.jsonl" in train.detail, train.detail
    assert time.monotonic() - start < 150  # the other rank fails with it (or is stopped), it does not hang
