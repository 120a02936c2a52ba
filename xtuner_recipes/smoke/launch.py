"""The stages after ``model`` of a smoke of several processes: ``plan``'s own commands for the launch, run here
(``nodes.py`` says how), then what the ranks recorded."""

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from xtuner_recipes.smoke import nodes
from xtuner_recipes.slurm import CPUS_PER_TASK
from xtuner_recipes.smoke.outcome import after_train, error_line


def launch(result, plan: dict, plan_path: Path, here: Path, report, progress: Callable | None) -> None:
    """The stages after ``model`` for several processes: ``plan``'s own commands for the launch, run here."""
    workdir = plan_path.parent
    stages = {stage.name: stage for stage in result.stages}
    env = nodes.environment(plan_path, result.device)
    planned = nodes.launch_plan(Path(plan["config"]), nodes=result.nodes, gpus=result.gpus,
                               work_dir=Path(plan["work_dir"]), launcher=result.launcher, report=report)
    world = result.nodes * result.gpus
    train = stages["train"]
    start = time.perf_counter()
    if result.launcher == "slurm":
        script = workdir / "job.sbatch"
        script.write_text(planned.script, encoding="utf-8")
        output = workdir / "job.out"
        cpu = result.device == "cpu"
        command = nodes.sbatch_command(script, output, cpu=cpu)
        if cpu:
            result.adaptations.append(f"sbatch {' '.join(nodes.SBATCH_HERE)}: a task a CPU, not the script's GPUs "
                                      f"and {CPUS_PER_TASK} CPUs a task")
        with open(workdir / "sbatch.log", "w", encoding="utf-8") as log:
            done = subprocess.run(command, env=env, cwd=here, stdout=log, stderr=subprocess.STDOUT)
        result.launch = [{"node": None, "command": nodes.quoted(command), "exit_status": done.returncode,
                          "log": str(output)}]
        logs = [output, workdir / "sbatch.log"]
    else:
        commands = [step.command for step in planned.steps if step.title.startswith("train")]
        result.launch = nodes.run_nodes(commands, env, workdir, here)
        logs = [Path(item["log"]) for item in result.launch]
    train.seconds = time.perf_counter() - start
    result.ranks = nodes.rank_records(Path(plan["ranks"]))
    for notes_path in sorted(workdir.glob("*.rank*.json")):
        result.adaptations += [n for n in json.loads(notes_path.read_text(encoding="utf-8"))
                               if n not in result.adaptations]
    log_text = "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in logs if path.is_file())
    failed = [item for item in result.launch if item["exit_status"] != 0]
    problem = nodes.judge_ranks(result.ranks, world)
    train.status = "passed"
    if failed:
        train.status = "failed"
        errors = nodes.rank_errors(log_text)
        said = "; ".join(f"rank {rank}: {error}" for rank, error in errors.items()) or error_line(log_text)
        train.detail = f"{nodes.describe(result.launch)}: {said}"
    else:
        after_train(plan, result, train)  # the losses rank 0 logged, the checkpoint it wrote
        if train.status == "passed" and problem:
            train.status, train.detail = "failed", problem
    if train.status == "passed":
        train.detail = (f"{world} ranks ({result.nodes} node{'s' if result.nodes > 1 else ''} x {result.gpus}, "
                        f"{result.ranks[0]['backend']}) trained one model: {train.detail}")
    else:
        train.log_tail = "\n".join(log_text.splitlines()[-25:])
    if progress:
        progress(train)
    if train.status == "failed":
        return
    if result.launcher == "slurm":  # the job converted and merged after training: its exit status covered them
        for name, folder in (("pth_to_hf", plan["adapter"]), ("merge", plan["merged"])):
            stage = stages[name]
            stage.status, stage.detail = "passed", folder
            if not Path(folder).is_dir():
                stage.status, stage.detail = "failed", f"the job wrote no {folder}"
            if progress:
                progress(stage)
        return
    convert = stages["pth_to_hf"]
    step = next(step for step in planned.steps if step.title == "convert")
    start = time.perf_counter()
    (converted,) = nodes.run_nodes([step.command], env, workdir, here, name="convert")
    convert.seconds = time.perf_counter() - start
    text = Path(converted["log"]).read_text(encoding="utf-8", errors="replace")
    if converted["exit_status"] == 0 and (Path(plan["adapter"]) / "adapter_config.json").is_file():
        convert.status, convert.detail = "passed", f"{plan['adapter']} (`{step.command}`)"
    else:
        convert.status, convert.detail = "failed", error_line(text)
        convert.log_tail = "\n".join(text.splitlines()[-25:])
    if progress:
        progress(convert)
