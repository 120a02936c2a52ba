"""``xtuner-recipes plan CONFIG``: the commands from this config to a chat, with the checkpoint in between."""

from pathlib import Path

from xtuner_recipes.cli.common import EXIT_OK, add_command, port, positive_int, preset, print_json

EXAMPLES = """  xtuner-recipes plan internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes plan my_config.py --gpus 8
  xtuner-recipes plan my_config.py --gpus 8 --nodes 2 --addr 10.0.0.1 --json
  xtuner-recipes plan my_config.py --gpus 8 --deepspeed deepspeed_zero3
  xtuner-recipes plan my_config.py --gpus 8 --nodes 2 --launcher slurm -o train.sbatch   # then: sbatch train.sbatch"""


def add_parser(commands) -> None:
    parser = add_command(commands, "plan", "Print the exact train, convert, merge and chat commands for a config.",
                         EXAMPLES, run)
    parser.add_argument("config", metavar="CONFIG", type=Path)
    parser.add_argument("--gpus", type=positive_int, default=1, metavar="N", help="GPUs per node (default: %(default)s)")
    parser.add_argument("--nodes", type=positive_int, default=1, metavar="M", help="nodes (default: %(default)s)")
    parser.add_argument("--work-dir", metavar="DIR", help="xtuner train's --work-dir (default: ./work_dirs/NAME)")
    parser.add_argument("--deepspeed", default="deepspeed_zero2", metavar="PRESET", type=preset,
                        help="xtuner train's --deepspeed, a preset or JSON file, or 'none' (default: %(default)s); "
                             "the memory check uses its ZeRO stage")
    parser.add_argument("--addr", metavar="HOST", help="with --nodes: node 0's address, the same ADDR on every node")
    parser.add_argument("--port", type=port, default=None, metavar="N",
                        help="with --nodes: the rendezvous port, the same on every node (default: 29500)")
    parser.add_argument("--launcher", choices=("torchrun", "slurm"), default="torchrun",
                        help="torchrun (default): a command a node; slurm: an sbatch script (printed, or written by -o)")
    parser.add_argument("-o", "--output", metavar="FILE", help="with --launcher slurm: write the sbatch script here")
    parser.add_argument("--force", action="store_true", help="overwrite the -o FILE if it exists")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def render_text(plan) -> str:
    lines = [f"# plan for {plan.config}"]
    for number, step in enumerate(plan.steps, 1):
        lines.append(f"\n# {number}. {step.title}: {step.note}" if step.note else f"\n# {number}. {step.title}")
        lines.append(step.command)
    if plan.notes:
        lines.append("")
        lines += [f"# note: {note}" for note in plan.notes]
    return "\n".join(lines)


def run(args) -> int:
    from xtuner_recipes.errors import RecipeError
    from xtuner_recipes.plan import PORT, make_plan

    if args.nodes == 1 and (args.addr is not None or args.port is not None):
        raise RecipeError("--addr and --port set the rendezvous of a launch over several nodes",
                          hint="add --nodes M (2 or more), or leave them out")
    if args.launcher == "slurm" and (args.addr is not None or args.port is not None):
        raise RecipeError("--addr and --port are torchrun's: under Slurm the first node of the allocation is the "
                          "address, and the script derives the port from the job id", hint="leave them out")
    if args.output is not None and args.launcher != "slurm":
        raise RecipeError("-o writes the sbatch script of --launcher slurm", hint="add --launcher slurm")
    if args.output is not None:
        from xtuner_recipes.fileio import refuse_existing

        refuse_existing(Path(args.output), force=args.force)  # before any work
    plan = make_plan(args.config, gpus=args.gpus, nodes=args.nodes, work_dir=args.work_dir,
                     deepspeed=None if args.deepspeed == "none" else args.deepspeed, addr=args.addr,
                     port=PORT if args.port is None else args.port, launcher=args.launcher, script_file=args.output)
    if args.output is not None:
        from xtuner_recipes.fileio import write_atomic

        write_atomic(args.output, plan.script, force=args.force)
    if args.json:
        print_json(plan.to_json())
    elif plan.script is not None and args.output is None:
        print(plan.script, end="")  # the script alone: `plan --launcher slurm CFG > job.sbatch` is the file
    else:
        print(render_text(plan))
    return EXIT_OK
