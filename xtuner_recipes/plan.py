"""The exact commands from a config to a chat: train, the checkpoint it writes, convert, merge, chat.

The checkpoint name comes from the validator's schedule arithmetic (``--level full``);
when the data can't be read here, the plan says so and leaves ``iter_<N>`` to fill in.

``make_plan("internlm_chat_7b_qlora_medqa_e3.py", gpus=8).steps[0].command`` is
``NPROC_PER_NODE=8 xtuner train internlm_chat_7b_qlora_medqa_e3.py --deepspeed deepspeed_zero2``.
"""

import dataclasses
import shlex
from pathlib import Path

from xtuner_recipes.config_source import literals, parse, read, uses_msagent_mapper
from xtuner_recipes.paths import looks_local
from xtuner_recipes.errors import RecipeError


@dataclasses.dataclass(frozen=True)
class Step:
    title: str
    command: str
    note: str = ""


@dataclasses.dataclass
class Plan:
    config: str
    steps: list[Step]
    checkpoint: str
    notes: list[str]
    stats: dict
    script: str | None = None  # --launcher slurm: the sbatch script

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# Unpacked batches change shape every step; with PyTorch's default allocator the run reserved 52.8 GiB for a
# 30.8 GiB estimate, with expandable segments within 5% of it (BENCHMARKS.md): the launch the estimate is for.
EXPANDABLE = "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"


def launch_command(config, *, gpus: int = 1, nodes: int = 1, work_dir: str | None = None,
                   deepspeed: str | None = "deepspeed_zero2", unpacked: bool = False) -> tuple[str, str]:
    """The one training command every command prints (``gen``'s next step, ``plan``), every path
    quoted for the shell, and where it runs. ``unpacked``: the data is not packed, so the command sets
    PyTorch's expandable segments (G003).

        >>> launch_command("my cfg.py", work_dir="./work dirs/x")[0]
        "xtuner train 'my cfg.py' --deepspeed deepspeed_zero2 --work-dir './work dirs/x'"
        >>> launch_command("c.py", unpacked=True)[0]
        'PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True xtuner train c.py --deepspeed deepspeed_zero2'
    """
    command = f"xtuner train {shlex.quote(str(config))}"
    if unpacked:
        command = f"{EXPANDABLE} {command}"
    if deepspeed:
        command += f" --deepspeed {shlex.quote(deepspeed)}"
    if work_dir is not None:
        command += f" --work-dir {shlex.quote(str(work_dir))}"
    if gpus == 1 and nodes == 1:
        return command, ("one GPU (deepspeed_zero2, as the tutorial launches it)" if deepspeed == "deepspeed_zero2"
                         else "one GPU")
    env = f"NPROC_PER_NODE={gpus}"
    if nodes > 1:
        env += f" NNODES={nodes} NODE_RANK=$NODE_RANK ADDR=$MASTER_ADDR PORT={PORT}"
        where = f"on each of {nodes} nodes, NODE_RANK 0..{nodes - 1}, MASTER_ADDR = node 0's address"
    else:
        where = f"{gpus} GPUs of one machine"
    return f"{env} {command}", where


PORT = 29500  # one fixed port: without PORT, xtuner picks a random one on each node (E010)
NODE0 = "NODE0_ADDRESS"  # what `plan --nodes M` prints for ADDR unless --addr gives it


def node_commands(config, *, gpus: int, nodes: int, work_dir: str | None, deepspeed: str | None,
                  addr: str | None = None, port: int = PORT, unpacked: bool = False) -> list[str]:
    """The command for each node of a multi-node launch: the same ADDR and PORT everywhere, its own NODE_RANK.

        >>> node_commands("c.py", gpus=8, nodes=2, work_dir=None, deepspeed="deepspeed_zero2", addr="10.0.0.1")[1]
        'NPROC_PER_NODE=8 NNODES=2 NODE_RANK=1 ADDR=10.0.0.1 PORT=29500 xtuner train c.py --deepspeed deepspeed_zero2'
    """
    command, _ = launch_command(config, work_dir=work_dir, deepspeed=deepspeed, unpacked=unpacked)
    address = shlex.quote(addr) if addr else NODE0
    return [f"NPROC_PER_NODE={gpus} NNODES={nodes} NODE_RANK={rank} ADDR={address} PORT={port} {command}"
            for rank in range(nodes)]


def make_plan(config: str | Path, *, gpus: int = 1, nodes: int = 1, work_dir: str | None = None,
              deepspeed: str | None = "deepspeed_zero2", addr: str | None = None, port: int = PORT,
              report=None, launcher: str = "torchrun", script_file: str | None = None) -> Plan:
    """The commands for ``config`` on ``nodes`` machines of ``gpus`` GPUs each, launched with ``deepspeed``
    (a preset or JSON file; None: without DeepSpeed). ``report``: a full ``validate`` of it already made."""
    from xtuner_recipes.config_source import template_name
    from xtuner_recipes.validate.inputs import Launch
    from xtuner_recipes.validate.runner import validate_config

    if gpus < 1 or nodes < 1:
        raise RecipeError(f"--gpus and --nodes must be at least 1, got {gpus} and {nodes}")
    path = Path(config)
    try:
        tree = parse(read(path), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as error:
        raise RecipeError(f"{path}: cannot read the config: {error}",
                          hint=f"run `xtuner-recipes validate {path}`") from None
    settings = literals(tree)
    launch = Launch.from_preset(deepspeed, gpus=gpus * nodes, nodes=nodes)  # an unknown preset fails, as in xtuner
    if report is None:
        report = validate_config(str(path), level="full", launch=launch)
    stats, notes = report.stats, []
    errors = [f for f in report.findings if f.severity == "error"]
    if errors:
        notes.append(f"the validator finds {len(errors)} error(s): run `xtuner-recipes validate {path}` first")
    from xtuner_recipes.validate.reporters import whole_run_line

    line = whole_run_line(stats)
    if line:  # validate's own line: one time for these commands
        notes.append(line)

    quoted = shlex.quote(str(path))
    out = work_dir or f"./work_dirs/{path.stem}"
    q = shlex.quote
    last_file = f"{out}/last_checkpoint"  # mmengine's CheckpointHook writes the last checkpoint's path there
    if stats.get("checkpoints") and not stats.get("checkpoints_vary"):
        checkpoint = f"{out}/{stats['checkpoints'][-1]}"
        checkpoint_arg = q(checkpoint)
    else:
        checkpoint, checkpoint_arg = f"{out}/iter_<N>.pth", f"\"$(cat {q(last_file)})\""
        if stats.get("checkpoints_vary"):
            low, high = stats.get("total_iters_range", ["?", "?"])
            notes.append(f"N is {low} to {high}: xtuner shuffles before packing, so the packed-sample count varies "
                         f"from run to run; convert reads the last checkpoint's path from {last_file}")
        else:
            notes.append("the iteration count needs the data and tokenizer, which could not be read here: convert "
                         f"reads the last checkpoint's path from {last_file}, which training writes")
    unpacked = stats.get("expandable_segments", stats.get("packed") is False)  # (or a mixture of experts)
    launch, where = launch_command(path, gpus=gpus, nodes=nodes, work_dir=work_dir, deepspeed=deepspeed,
                                   unpacked=unpacked)
    if unpacked:
        why = "the data is not packed" if stats.get("packed") is False else "the model routes tokens to experts"
        notes.append(f"{why}: {EXPANDABLE} keeps PyTorch's allocator from fragmenting (G003); "
                     "the memory estimate is for that launch")
    model = settings.get("pretrained_model_name_or_path", "MODEL")
    template = template_name(tree)
    chat_options = f" --prompt-template {template}" if template else ""
    if isinstance(settings.get("SYSTEM"), str) and settings["SYSTEM"]:  # `SYSTEM = 5` is no prompt to pass on
        chat_options += f" --system {shlex.quote(settings['SYSTEM'])}"
    chat_note = ("type a question and end it with an empty line (xtuner chat reads until one); RESET clears, EXIT "
                 "leaves")
    if uses_msagent_mapper(tree):
        chat_options += " --lagent"
        chat_note = ("--lagent runs the ReAct tool loop the MS-Agent data taught: it needs `pip install lagent` and a "
                     "search tool key, `export SERPER_API_KEY=...` (serper.dev), before it starts; end a question "
                     "with an empty line")
    chat = f"xtuner chat {q(out + '/merged')}{chat_options}"
    if "total_iters_range" in stats:
        iterations = "{} to {} iterations (packing follows a shuffle)".format(*stats["total_iters_range"])
    else:
        iterations = f"{stats['total_iters']} iterations" if "total_iters" in stats else "iterations unknown here"
    batch = f", global batch {stats['global_batch']}" if "global_batch" in stats else ""
    if nodes > 1:
        trains = [Step(f"train, node {rank}", command, (f"on node 0, whose address ADDR is; {iterations}{batch}"
                                                         if rank == 0 else f"on node {rank}"))
                  for rank, command in enumerate(node_commands(path, gpus=gpus, nodes=nodes, work_dir=work_dir,
                                                               deepspeed=deepspeed, addr=addr, port=port,
                                                               unpacked=unpacked))]
        if not addr:
            notes.append(f"replace {NODE0} with node 0's address (or give --addr): every node must name the same "
                         "ADDR and PORT, or the nodes never meet")
    else:
        trains = [Step("train", launch, f"{where}; {iterations}{batch}")]
    steps = [
        *trains,
        Step("checkpoint", q(checkpoint),
             "written by training (a folder of that name under DeepSpeed; pth_to_hf takes either)"),
        Step("convert", f"xtuner convert pth_to_hf {quoted} {checkpoint_arg} {q(out + '/hf_adapter')}",
             "a Hugging Face LoRA adapter"),
        Step("merge", f"xtuner convert merge {q(str(model))} {q(out + '/hf_adapter')} {q(out + '/merged')} "
                      "--max-shard-size 2GB", "the adapter merged into the base model"),
        Step("chat", chat, chat_note),
        Step("chat before merging (optional)", f"xtuner chat {q(str(model))} --adapter {q(out + '/hf_adapter')}"
                                               f"{chat_options}",
             "the tutorial's way: the base model with the adapter, without writing a merged copy"),
    ]
    if isinstance(model, str) and not looks_local(model):  # a hub id: xtuner downloads it; fetch it to check first
        name = "./" + model.rstrip("/").rsplit("/", 1)[-1]
        steps.insert(0, Step("download the model (optional)",
                             f"huggingface-cli download {q(model)} --local-dir {q(name)}",
                             f"or from ModelScope: modelscope download --model {q(model)} --local_dir {q(name)}; "
                             f"then `xtuner-recipes set {path} --model {name} --in-place` so that validate reads it"))
    if gpus * nodes > 1 and stats.get("global_batch"):
        one = stats["global_batch"] // (gpus * nodes)
        notes.append(f"global batch {stats['global_batch']} on {gpus * nodes} GPUs ({one} on one): to keep {one}, "
                     f"`xtuner-recipes set {path} --gpus {gpus * nodes} --in-place` first")
    if launcher == "slurm":
        return _slurm_plan(Plan(str(path), steps, checkpoint, notes, stats), path, gpus=gpus, nodes=nodes,
                           work_dir=work_dir, deepspeed=deepspeed, unpacked=unpacked, script_file=script_file)
    notes.append(f"`xtuner-recipes train {path} …` validates first and returns training's real exit status "
                 "(`xtuner train` exits 0 when training fails)")
    return Plan(str(path), steps, checkpoint, notes, stats)


def _slurm_plan(plan: Plan, path: Path, *, gpus: int, nodes: int, work_dir: str | None, deepspeed: str | None,
                unpacked: bool, script_file: str | None) -> Plan:
    """``plan``, launched by Slurm: one sbatch script trains on every node and then converts and merges; the
    steps submit it (or run its training inside an allocation) and chat."""
    from xtuner_recipes import slurm

    q = shlex.quote
    train_args = " ".join(([f"--deepspeed {q(deepspeed)}"] if deepspeed else [])
                          + ([f"--work-dir {q(str(work_dir))}"] if work_dir is not None else []))
    by_title = {step.title: step for step in plan.steps}
    environment = (EXPANDABLE,) if unpacked else ()
    plan.script = slurm.sbatch_script(str(path), config_hash=slurm.config_hash(path), gpus=gpus, nodes=nodes,
                                      train_args=train_args, environment=environment,
                                      after=[slurm.module_form(by_title["convert"].command),
                                             slurm.module_form(by_title["merge"].command)])
    name = script_file or f"{path.stem}.sbatch"
    interactive = " ".join([f"{slurm.port_line()};", *environment,
                            f"srun --kill-on-bad-exit=1 {slurm.train_command(str(path), train_args)}"])
    kept = [step for step in plan.steps if step.title not in ("convert", "merge") and not step.title.startswith("train")]
    submit = [Step("train, convert and merge (sbatch)", f"sbatch {q(name)}",
                   f"{nodes} node(s) x {gpus} GPU(s), one task a GPU; the script (written by -o, or printed without "
                   "it) then runs pth_to_hf and merge on the first node"),
              Step("or, inside an allocation (salloc)", interactive, "the training alone, as the script runs it")]
    first = 1 if kept and kept[0].title.startswith("download") else 0
    plan.steps = kept[:first] + submit + kept[first:]
    plan.notes.append("the job's exit status is training's: it runs xtuner's train script itself "
                      "(`xtuner train` exits 0 when training fails), and --kill-on-bad-exit stops every task when one "
                      "fails")
    return plan
