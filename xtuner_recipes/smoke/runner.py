"""Run the smoke stages one process each, time them, and collect one result."""

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from xtuner_recipes.config_source import parse, read, top_level_values
from xtuner_recipes.errors import RecipeError
from xtuner_recipes.smoke.outcome import after_train, error_line


# The stages, in order; each runs as `python -m xtuner_recipes.smoke.worker NAME PLAN`. The runner does not import
# the worker: `-m` would then find it imported already, and runpy's warning would head every stage's log.
STAGE_NAMES = ("model", "train", "pth_to_hf", "merge", "chat")


@dataclasses.dataclass
class Stage:
    name: str
    status: str = "skipped"  # passed | failed | skipped
    seconds: float = 0.0
    detail: str = ""
    log_tail: str = ""


@dataclasses.dataclass
class SmokeResult:
    config: str
    device: str
    steps: int | None
    stages: list[Stage]
    deepspeed: str | None = None
    adaptations: list[str] = dataclasses.field(default_factory=list)
    losses: list[float] = dataclasses.field(default_factory=list)
    checkpoint: str | None = None
    reply: str | None = None
    kept: str | None = None
    findings: list = dataclasses.field(default_factory=list)  # the config's static and load errors: nothing ran
    nodes: int = 1
    gpus: int = 1  # processes a node
    launcher: str | None = None  # several processes: torchrun | slurm
    launch: list[dict] = dataclasses.field(default_factory=list)  # each node's (or the job's) command and status
    ranks: list[dict] = dataclasses.field(default_factory=list)  # what each rank recorded (rank_hook)

    @property
    def ok(self) -> bool:
        return not self.findings and all(stage.status == "passed" for stage in self.stages)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "ok": self.ok}


def target_model(config: Path) -> tuple[str, Path]:
    """The config's ``pretrained_model_name_or_path`` as written, and the local folder it names."""
    try:
        tree = parse(read(config), filename=str(config))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as error:
        raise RecipeError(f"{config}: cannot read the config: {error}",
                          hint=f"run `xtuner-recipes validate {config}` first") from None
    value = top_level_values(tree).get("pretrained_model_name_or_path")
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        written = value.value
        folder = Path(written).expanduser()
        if not folder.is_absolute():
            folder = Path.cwd() / folder
        if not (folder / "config.json").is_file():
            raise RecipeError(
                f"{config}:{value.lineno}: pretrained_model_name_or_path {written!r} is not a local model folder",
                hint="smoke reads the model's config.json and tokenizer (not its weights); download those first")
        return written, folder
    raise RecipeError(f"{config}: no string setting pretrained_model_name_or_path",
                      hint="smoke needs to know which model the config trains")


def _workdir(keep: Path | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="xtuner-recipes-smoke-"))
    if keep.exists() and not keep.is_dir():
        raise RecipeError(f"--keep {keep}: it exists and is not a folder", hint="name a new or empty folder")
    if keep.exists() and any(keep.iterdir()):
        raise RecipeError(f"--keep {keep}: the folder exists and is not empty",
                          hint="name a new or empty folder; nothing in it is overwritten")
    keep.mkdir(parents=True, exist_ok=True)
    return keep


def _accumulative_counts(kept: dict) -> int:
    """The loaded config's ``optim_wrapper.accumulative_counts`` (1 when it has none or it is no whole number)."""
    from xtuner_recipes.compat.mmengine import settings
    from xtuner_recipes.values import is_positive_int

    context = kept.get("context")
    config = context.values.get("config") if context is not None else None
    wrapper = settings(config).get("optim_wrapper") if config is not None else None
    counts = wrapper.get("accumulative_counts", 1) if isinstance(wrapper, dict) else 1
    return counts if is_positive_int(counts) else 1


def run_smoke(config: str | Path, *, steps: int | None = 4, device: str = "cpu", keep: Path | None = None,
              progress: Callable[[Stage], None] | None = None, deepspeed: str | None = None,
              nodes: int = 1, gpus: int = 1, launcher: str = "torchrun") -> SmokeResult:
    """Run every stage on ``config``; stop at the first failure (later stages are skipped).

    ``steps=None`` trains for the config's own schedule (``max_epochs``) instead of N steps.
    ``deepspeed``: train as ``xtuner train CONFIG --deepspeed PRESET`` does, in one process (GPU only).
    ``nodes``/``gpus`` beyond one process: train and convert by ``plan``'s own commands for that launch
    (``launcher`` torchrun or slurm), several processes on this machine (``nodes.py``).
    """
    if steps is not None and steps < 1:
        raise RecipeError(f"--steps must be at least 1, got {steps}")
    world = nodes * gpus
    if world > 1 and launcher == "slurm":
        if shutil.which("sbatch") is None:
            raise RecipeError("--launcher slurm: sbatch is not on PATH",
                              hint="run it where Slurm answers (a login node), or start a one-host Slurm with "
                                   ".ci/slurm-one-host (as root)")
    elif launcher not in ("torchrun", "slurm"):
        raise RecipeError(f"--launcher {launcher!r}: torchrun or slurm")
    if deepspeed:
        from xtuner_recipes.xtuner_info import deepspeed_zero

        deepspeed_zero(deepspeed)  # an unknown preset or a missing file fails here, before any stage
        if device != "cuda":
            raise RecipeError(f"--deepspeed {deepspeed}: DeepSpeed trains on a GPU only",
                              hint="add --device cuda, on a machine with a GPU")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RecipeError("--device cuda: no CUDA GPU is visible here", hint="use --device cpu, or run on the GPU machine")
    config = Path(config).resolve()
    # What xtuner would fail on before training starts (the source, the load, its imports): said in a second,
    # not after the model stage.
    from xtuner_recipes.validate import validate_config

    kept: dict = {}
    checked = validate_config(str(config), level="load", keep=kept)
    errors = [f for f in checked.findings if f.severity == "error"]
    names = STAGE_NAMES if world == 1 else ("model", "train", "pth_to_hf", *(("merge",) if launcher == "slurm" else ()))
    shape = dict(nodes=nodes, gpus=gpus, launcher=launcher if world > 1 else None)
    if errors:
        return SmokeResult(config=str(config), device=device, steps=steps, stages=[Stage(name) for name in names],
                           deepspeed=deepspeed, findings=errors, **shape)
    written, source = target_model(config)
    workdir = _workdir(keep).resolve()  # the stages run elsewhere: every path they are given is absolute
    plan = {
        "config": str(config), "model_from": written, "model_source": str(source), "device": device,
        "steps": steps, "model": str(workdir / "model"), "work_dir": str(workdir / "train"),
        "adapter": str(workdir / "hf_adapter"), "merged": str(workdir / "merged"), "deepspeed": deepspeed,
        "accumulative_counts": _accumulative_counts(kept),
    }
    if world > 1:  # plan's commands convert and merge into the work dir
        plan.update(ranks=str(workdir / "ranks"), adapter=str(workdir / "train" / "hf_adapter"),
                    merged=str(workdir / "train" / "merged"))
    result = SmokeResult(config=str(config), device=device, steps=steps, stages=[Stage(name) for name in names],
                         kept=str(workdir) if keep else None, deepspeed=deepspeed, **shape)
    # The stages run in the current folder, as `xtuner train CONFIG` run here would: the config's
    # relative data, model and work paths resolve the same way for both.
    here = Path.cwd()
    result.adaptations.append(f"relative paths in the config resolve against the current folder {here}, "
                              "as xtuner's own tools run here would")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    try:
        for stage in result.stages:
            plan_path = workdir / "plan.json"
            plan_path.write_text(json.dumps(plan, indent=1), encoding="utf-8")
            if world > 1 and stage.name != "model":
                from xtuner_recipes.smoke.launch import launch

                launch(result, plan, plan_path, here, checked, progress)
                break
            log_path = workdir / f"{stage.name}.log"
            start = time.perf_counter()
            with open(log_path, "w", encoding="utf-8") as log:
                done = subprocess.run([sys.executable, "-m", "xtuner_recipes.smoke.worker", stage.name, str(plan_path)],
                                      stdout=log, stderr=subprocess.STDOUT, env=env, cwd=here)
            stage.seconds = time.perf_counter() - start
            notes_path = workdir / f"{stage.name}.json"
            notes = json.loads(notes_path.read_text(encoding="utf-8")) if notes_path.is_file() else []
            log_text = log_path.read_text(encoding="utf-8", errors="replace")
            stage.status = "passed" if done.returncode == 0 else "failed"
            if done.returncode != 0:
                stage.detail = error_line(log_text)
            elif stage.name == "model":
                stage.detail = notes[0] if notes else ""
            elif stage.name == "train":
                after_train(plan, result, stage)
            elif stage.name == "chat":
                result.reply = json.loads(notes[-1])["reply"]
                stage.detail = f"reply: {result.reply!r}"
            else:
                stage.detail = {"pth_to_hf": plan["adapter"], "merge": plan["merged"]}[stage.name]
            if stage.name in ("train", "pth_to_hf"):
                result.adaptations += [note for note in notes if note not in result.adaptations]
            if stage.status == "failed":
                stage.log_tail = "\n".join(log_text.splitlines()[-25:])
            if progress:
                progress(stage)
            if stage.status == "failed":
                break
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return result
