"""The sbatch script `plan --launcher slurm` writes, submitted to a real Slurm: `.ci/slurm-one-host` starts one
from Debian's packages (munge, slurmctld, slurmd on this machine; `.ci/run` does it in CI). `smoke --gpus 2
--launcher slurm` submits the script plan writes for a smoke-adapted config with `sbatch --wait`: two tasks that
meet through mmengine's Slurm init (the function xtuner calls), a job whose exit status is training's, and two
jobs at once that do not meet on one port."""

import os
import re
import shutil
import subprocess
import threading

import pytest
from test_nodes import medqa_config

pytestmark = pytest.mark.slow


def _slurm_answers() -> bool:
    return shutil.which("sbatch") is not None and subprocess.run(
        ["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0


@pytest.fixture(scope="session")
def slurm():
    if not _slurm_answers():
        if os.environ.get("CI"):
            pytest.fail("CI: no Slurm answers; .ci/run starts one with .ci/slurm-one-host")
        pytest.skip("no Slurm answers here: start one as root with `.ci/slurm-one-host` (Debian's slurm-wlm, munge)")


def test_two_jobs_at_once_meet_on_ports_of_their_own_and_exit_as_training_did(slurm, tmp_path, tiny_model, cli):
    """Two jobs at once: job a trains 2 tasks in one group; job b's data file is gone when its tasks start, so its
    training fails and the job's exit status says so. b ran while a trained, on a port of its own."""
    from xtuner_recipes.slurm import PORT_BASE, PORT_SPAN
    from xtuner_recipes.smoke import run_smoke

    folders = {name: tmp_path / name for name in ("a", "b")}
    made = {}
    for name, folder in folders.items():
        folder.mkdir()
        made[name] = medqa_config(cli, tiny_model, folder)
    results = {}

    def lose_the_data(stage):  # after validate read it and the tiny model is built: gone when the tasks start
        if stage.name == "model":
            made["b"][1].unlink()

    def submit(name):
        results[name] = run_smoke(made[name][0], steps=2, gpus=2, launcher="slurm", keep=folders[name] / "run",
                                  progress=lose_the_data if name == "b" else None)

    jobs = [threading.Thread(target=submit, args=(name,)) for name in folders]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    a, b = results["a"], results["b"]
    assert a.ok, [(s.name, s.status, s.detail, s.log_tail) for s in a.stages]
    assert [stage.name for stage in a.stages] == ["model", "train", "pth_to_hf", "merge"]
    (job,) = a.launch
    assert job["exit_status"] == 0 and job["command"].startswith("sbatch --wait ")
    # the script that ran is plan's, byte for byte (but for the checkpoint: the smoke trains 2 iterations, not the
    # config's schedule, so its convert reads the checkpoint's path from the file training writes, as plan does
    # when it can't count the iterations)
    work = folders["a"] / "run" / "train"
    planned = cli("plan", made["a"][0], "--gpus", "2", "--launcher", "slurm", "--deepspeed", "none",
                  "--work-dir", work, check_rc=0).stdout
    assert f"{work}/iter_" in planned
    planned = re.sub(rf"{re.escape(str(work))}/iter_\d+\.pth", f'"$(cat {work}/last_checkpoint)"', planned)
    assert (folders["a"] / "run" / "job.sbatch").read_text() == planned
    ranks = a.ranks
    assert [(r["rank"], r["world_size"], r["backend"]) for r in ranks] == [(0, 2, "gloo"), (1, 2, "gloo")]
    assert len({r["master"] for r in ranks}) == 1 and len({r["slurm_job"] for r in ranks}) == 1
    assert ranks[0]["trainable_sha256"] == ranks[1]["trainable_sha256"]
    assert (work / "merged" / "config.json").is_file()
    # b: the job's exit status is its training's, rank 0's error named, nothing converted
    (failed,) = b.launch
    train = b.stages[1]
    assert failed["exit_status"] != 0 and train.status == "failed", failed
    assert "rank 0: FileNotFoundError: " in train.detail, train.detail
    assert [stage.status for stage in b.stages[2:]] == ["skipped", "skipped"]
    # at once, on ports of their own (MASTER_PORT from the job id): b was submitted before a finished training
    # and ended after a was submitted
    b_run = folders["b"] / "run"
    b_job = int(re.search(r"Submitted batch job (\d+)", (b_run / "sbatch.log").read_text()).group(1))
    assert a.ranks[0]["master"].endswith(f":{PORT_BASE + int(a.ranks[0]['slurm_job']) % PORT_SPAN}")
    assert int(a.ranks[0]["slurm_job"]) != b_job
    assert not a.ranks[0]["master"].endswith(f":{PORT_BASE + b_job % PORT_SPAN}")
    assert (b_run / "plan.json").stat().st_mtime < a.ranks[0]["finished_at"]
    assert (b_run / "job.out").stat().st_mtime > (folders["a"] / "run" / "plan.json").stat().st_mtime
