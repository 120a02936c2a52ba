"""The sbatch script `plan --launcher slurm` writes, submitted to a real Slurm: `.ci/slurm-one-host` starts one
from Debian's packages (munge, slurmctld, slurmd on this machine; `.ci/run` does it in CI). `smoke --gpus 2
--launcher slurm` submits the script plan writes for a smoke-adapted config with `sbatch --wait`: two tasks that
meet through mmengine's Slurm init (the function xtuner calls), a job whose exit status is training's, and two
jobs at once that do not meet on one port."""

import json
import os
import re
import shutil
import subprocess
import threading

import pytest
from test_nodes import medqa_config

# one worker runs both, one after the other: at once they would wait on each other's task slots
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]


def _slurm_answers() -> bool:
    return shutil.which("sbatch") is not None and subprocess.run(
        ["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0


@pytest.fixture(scope="module")
def slurm():
    if not _slurm_answers():
        if os.environ.get("CI"):
            pytest.fail("CI: no Slurm answers; .ci/run starts one with .ci/slurm-one-host")
        pytest.skip("no Slurm answers here: start one as root with `.ci/slurm-one-host` (Debian's slurm-wlm, munge)")


def test_two_sbatch_jobs_at_once_each_train_two_tasks_on_a_port_of_their_own(slurm, tmp_path, tiny_model, cli):
    from xtuner_recipes.smoke import run_smoke

    config, _ = medqa_config(cli, tiny_model, tmp_path)
    results = {}

    def submit(name):
        results[name] = run_smoke(config, steps=2, gpus=2, launcher="slurm", keep=tmp_path / name)

    jobs = [threading.Thread(target=submit, args=(name,)) for name in ("a", "b")]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    for name, result in results.items():
        assert result.ok, (name, [(s.name, s.status, s.detail, s.log_tail) for s in result.stages])
        assert [stage.name for stage in result.stages] == ["model", "train", "pth_to_hf", "merge"]
        (job,) = result.launch
        assert job["exit_status"] == 0 and job["command"].startswith("sbatch --wait ")
        # the script that ran is plan's, byte for byte
        planned = cli("plan", config, "--gpus", "2", "--launcher", "slurm", "--deepspeed", "none",
                      "--work-dir", tmp_path / name / "train", check_rc=0).stdout
        # (but for the checkpoint: the smoke trains 2 iterations, not the config's schedule, so its convert reads
        # the checkpoint's path from the file training writes, as plan does when it can't count the iterations)
        work = tmp_path / name / "train"
        assert f"{work}/iter_" in planned
        planned = re.sub(rf"{re.escape(str(work))}/iter_\d+\.pth", f'"$(cat {work}/last_checkpoint)"', planned)
        assert (tmp_path / name / "job.sbatch").read_text() == planned
        ranks = result.ranks
        assert [(r["rank"], r["world_size"], r["backend"]) for r in ranks] == [(0, 2, "gloo"), (1, 2, "gloo")]
        assert len({r["master"] for r in ranks}) == 1 and len({r["slurm_job"] for r in ranks}) == 1
        assert ranks[0]["trainable_sha256"] == ranks[1]["trainable_sha256"]
        assert (tmp_path / name / "train" / "merged" / "config.json").is_file()
    a, b = (results[name].ranks for name in ("a", "b"))
    assert a[0]["slurm_job"] != b[0]["slurm_job"]
    assert a[0]["master"] != b[0]["master"], "two jobs, one rendezvous port"  # MASTER_PORT from the job id
    # they were in training at the same time: both had joined before either finished
    assert max(a[0]["joined_at"], b[0]["joined_at"]) < min(a[0]["finished_at"], b[0]["finished_at"])


def test_the_jobs_exit_status_is_trainings(slurm, tmp_path, tiny_model, cli):
    from xtuner_recipes.smoke import run_smoke

    config, data = medqa_config(cli, tiny_model, tmp_path)

    def lose_the_data(stage):
        if stage.name == "model":
            data.unlink()

    result = run_smoke(config, steps=2, gpus=2, launcher="slurm", keep=tmp_path / "run", progress=lose_the_data)
    (job,) = result.launch
    train = result.stages[1]
    assert job["exit_status"] != 0 and train.status == "failed", job
    assert "rank 0: FileNotFoundError: " in train.detail, train.detail
    assert [stage.status for stage in result.stages[2:]] == ["skipped", "skipped"]
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["ranks"]  # the plan named the ranks' folder
