"""``smoke --nodes M --gpus N``: the launch commands ``plan`` prints for several processes, run literally here.

torchrun form: ``plan --nodes M``'s per-node commands (``NPROC_PER_NODE=N NNODES=M NODE_RANK=i ADDR=127.0.0.1
PORT=P xtuner train CONFIG …``), all started at once on this machine, each "node" its own process tree; then the
plan's ``xtuner convert pth_to_hf`` command. Slurm form: the ``sbatch`` script ``plan --launcher slurm`` writes,
submitted with ``sbatch --wait`` to the cluster ``sbatch`` reaches (its training, then convert and merge).

The commands are not edited: the smoke's adaptations (a tiny model, a few iterations, gloo on the CPU, a hook
that records each rank) reach the processes they start through ``inject/sitecustomize.py``, which Python imports
at the start of each. ``xtuner``'s own entry point drops its child's exit status; the smoke records it there.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PLAN_ENV = "XTUNER_RECIPES_SMOKE_PLAN"
STATUS_ENV = "XTUNER_RECIPES_SMOKE_STATUS"
INJECT = Path(__file__).resolve().parent / "inject"
TOOLS = {"train.py": "train", "xtuner.tools.train": "train", "pth_to_hf.py": "pth_to_hf",
         "xtuner.tools.model_converters.pth_to_hf": "pth_to_hf", "merge.py": "merge",
         "xtuner.tools.model_converters.merge": "merge"}
GRACE_S = 60  # after one node fails, how long the others get to fail on their own before they are stopped
SBATCH_HERE = ("--cpus-per-task=1", "--gpus-per-node=0")  # on the CPU: one slot a task, no GPUs to ask for


# --- in the processes the launch commands start ---------------------------------------------------------------

def _program() -> str:
    """What this process runs: a script's file name, or the module after ``-m``."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    scripts = [word for word in argv[1:] if not word.startswith("-")]
    return Path(scripts[0] if scripts else argv[0] if argv else "").name


def install(plan_path: str) -> None:
    """Set up this process of the launch: ``xtuner``'s entry point records its child's exit status; a training
    or converter script gets the smoke's adaptations as its config loads (and, for merge, the tiny model)."""
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    program = _program()
    if program == "xtuner" and os.environ.get(STATUS_ENV):
        _record_status(Path(os.environ[STATUS_ENV]))
    tool = TOOLS.get(program)
    if tool is None:
        return
    from xtuner_recipes.smoke.adapt import adapt_on_load, patch_runtime

    notes = patch_runtime(plan["device"])
    if tool == "merge":  # merge names the model on its command line, not in a config: the tiny copy instead
        sys.argv[1:] = [plan["model"] if word == plan["model_from"] else word for word in sys.argv[1:]]
    else:
        adapt_on_load(plan, notes)
    rank = os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or "0"
    notes_path = Path(plan_path).with_name(f"{tool}.rank{rank}.json")

    import atexit

    atexit.register(lambda: notes_path.write_text(json.dumps(notes, ensure_ascii=False, indent=1), encoding="utf-8"))


def _record_status(path: Path) -> None:
    """``xtuner``'s entry point runs torchrun (or the script) with ``subprocess.run`` and ignores its status:
    write each child's status to ``path`` as it ends."""
    original = subprocess.run

    def run(*args, **kwargs):
        done = original(*args, **kwargs)
        path.write_text(json.dumps({"returncode": done.returncode, "command": [str(a) for a in done.args]}),
                        encoding="utf-8")
        return done

    subprocess.run = run


# --- in the smoke ----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(plan_path: Path, device: str) -> dict:
    """The environment the launch commands run in: this folder's sitecustomize first on PYTHONPATH, the plan
    named, and this Python's scripts (``xtuner``, ``torchrun``, ``python``) first on PATH."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(INJECT), *filter(None, [env.get("PYTHONPATH")])])
    env[PLAN_ENV] = str(plan_path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def launch_plan(config: Path, *, nodes: int, gpus: int, work_dir: Path, launcher: str, report):
    """``plan``'s commands for this launch, made by ``plan`` itself (no DeepSpeed: it needs a GPU)."""
    from xtuner_recipes.plan import make_plan

    return make_plan(config, gpus=gpus, nodes=nodes, work_dir=str(work_dir), deepspeed=None, addr="127.0.0.1",
                     port=free_port(), report=report, launcher=launcher,
                     script_file=str(work_dir.parent / "job.sbatch"))


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_nodes(commands: list[str], env: dict, workdir: Path, cwd: Path, name: str = "node") -> list[dict]:
    """Start every node's command at once (``bash -c``, a process group each); when one fails, the others get
    ``GRACE_S`` to end before they are stopped. Each node's status: the exit status of what ``xtuner`` ran
    (recorded in its process), else the command's own."""
    started = []
    for node, command in enumerate(commands):
        status_path = workdir / f"{name}{node}.status.json"
        status_path.unlink(missing_ok=True)
        log = open(workdir / f"{name}{node}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        process = subprocess.Popen(["bash", "-c", command], env={**env, STATUS_ENV: str(status_path)},
                                   stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        started.append((node, command, process, log, status_path))
    failed_at = None
    while any(process.poll() is None for _, _, process, _, _ in started):
        if failed_at is None and any(_status(process, path) not in (None, 0) for _, _, process, _, path in started):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > GRACE_S:
            for _, _, process, _, _ in started:
                _stop(process)
        time.sleep(0.2)
    results = []
    for node, command, process, log, status_path in started:
        log.close()
        results.append({"node": node, "command": command, "exit_status": _status(process, status_path),
                        "stopped": failed_at is not None and process.returncode == -signal.SIGKILL,
                        "log": log.name})
    return results


def _status(process: subprocess.Popen, status_path: Path) -> int | None:
    """A node's exit status once known: what xtuner's child returned, else the command's own."""
    if status_path.is_file():
        try:
            return json.loads(status_path.read_text(encoding="utf-8"))["returncode"]
        except (ValueError, KeyError):
            pass
    code = process.poll()
    if code is None:
        return None
    return 128 - code if code < 0 else code


def rank_records(folder: Path) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("rank*.json"))]


def judge_ranks(records: list[dict], world: int) -> str | None:
    """Why the ranks did not train as one group of ``world``, or None."""
    ranks = sorted(record["rank"] for record in records)
    if ranks != list(range(world)):
        return f"ranks {list(range(world))} expected, ranks {ranks} recorded that they started training"
    sizes = {record["world_size"] for record in records}
    if sizes != {world}:
        return f"the ranks joined groups of {sorted(sizes)} processes, not one of {world}"
    unfinished = [record["rank"] for record in records if not record.get("finished")]
    if unfinished:
        return f"rank(s) {unfinished} did not finish training"
    digests = {record["trainable_sha256"] for record in records}
    if len(digests) != 1:
        return "the ranks ended with different trainable weights: they did not train one model together"
    return None


def sbatch_command(script: Path, output: Path, *, cpu: bool) -> list[str]:
    """``sbatch --wait`` (its exit status is the job's); on the CPU, with overrides of the script's GPU requests."""
    return ["sbatch", "--wait", *(SBATCH_HERE if cpu else ()), f"--output={output}", str(script)]


def rank_errors(log: str) -> dict[int, str]:
    """Each rank's own error, from the launch's logs: the last ``[rankN]: SomeError: …`` line torchrun passes on,
    else the signal that killed it (torchrun's failure table), by rank."""
    import re

    found: dict[int, str] = {}
    for line in log.splitlines():
        match = re.match(r"\[rank(\d+)\]:\s*(.*)", line)
        if match:
            head = match.group(2).split(":", 1)[0].strip()
            if head.endswith(("Error", "Exception")) and " " not in head:
                found[int(match.group(1))] = match.group(2).strip()[:300]
    for rank, code in re.findall(r"rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-\d+)", log):
        found.setdefault(int(rank), f"killed by signal {-int(code)} ({signal.Signals(-int(code)).name})"
                         if -int(code) in signal.valid_signals() else f"exit code {code}")
    return dict(sorted(found.items()))


def describe(results: list[dict]) -> str:
    return "; ".join(f"node {r['node']}: exit {r['exit_status']}" + (" (stopped)" if r.get("stopped") else "")
                     for r in results)


def quoted(command: list[str]) -> str:
    return shlex.join(command)
