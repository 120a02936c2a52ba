"""``xtuner-recipes smoke CONFIG``: train, convert, merge and chat on a tiny model of the config's architecture."""

import argparse
import sys
from pathlib import Path

from xtuner_recipes.cli.common import EXIT_FINDINGS, EXIT_OK, add_command, positive_int, print_json

EXAMPLES = """  xtuner-recipes smoke internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes smoke my_config.py --steps 8 --keep ./smoke-run
  xtuner-recipes smoke my_config.py --device cuda --json
  xtuner-recipes smoke my_config.py --device cuda --deepspeed deepspeed_zero2
  xtuner-recipes smoke my_config.py --steps all   # the config's whole schedule
  xtuner-recipes smoke my_config.py --nodes 2     # plan --nodes 2's commands, two "nodes" on this machine
  xtuner-recipes smoke my_config.py --gpus 2 --launcher slurm   # plan --launcher slurm's script, by sbatch"""


def add_parser(commands) -> None:
    parser = add_command(
        commands, "smoke",
        "Run a config end to end (train, pth_to_hf, merge, chat) on a tiny random model of its architecture.",
        EXAMPLES, run)
    parser.add_argument("config", metavar="CONFIG", type=Path, help="the xtuner config to try")
    parser.add_argument("--steps", type=_steps, default=4, metavar="N",
                        help="training steps, or 'all' for the config's own schedule (default: %(default)s)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu adapts what needs a GPU and says what (default: %(default)s)")
    parser.add_argument("--deepspeed", metavar="PRESET",
                        help="train as `xtuner train CONFIG --deepspeed PRESET` (a preset name or a JSON file; "
                             "needs --device cuda)")
    parser.add_argument("--nodes", type=positive_int, default=1, metavar="M",
                        help="run `plan --nodes M`'s launch commands, M \"nodes\" on this machine (default: %(default)s)")
    parser.add_argument("--gpus", type=positive_int, default=1, metavar="N",
                        help="processes a node, as `plan --gpus N` (on the CPU: N processes, not GPUs)")
    parser.add_argument("--launcher", choices=("torchrun", "slurm"), default="torchrun",
                        help="with several processes: torchrun runs plan's per-node commands; slurm submits plan's "
                             "sbatch script with `sbatch --wait` (default: %(default)s)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="work in DIR (new or empty) and keep it: model, checkpoint, adapter, logs")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _steps(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps or 'all', got {text!r}") from None


def _progress(stage) -> None:
    print(f"  {stage.name:<10} {stage.status:<7} {stage.seconds:6.1f} s", file=sys.stderr, flush=True)


def render_text(result) -> str:
    steps = "the config's schedule" if result.steps is None else f"{result.steps} training iterations"
    launch = f", --deepspeed {result.deepspeed}" if result.deepspeed else ""
    if result.launcher:
        launch += (f", {result.nodes} node(s) x {result.gpus} process(es) by "
                   + ("plan's per-node torchrun commands" if result.launcher == "torchrun" else "plan's sbatch script"))
    lines = [f"smoke: {result.config} ({steps} on {result.device}{launch})"]
    if result.findings:
        lines.append(f"not run: `xtuner-recipes validate --level load` finds {len(result.findings)} error(s) that "
                     "xtuner would stop on:")
        lines += [f"  {f.code}" + (f" [{f.key}]" if f.key else "") + (f" line {f.line}" if f.line else "")
                  + f": {f.message}" for f in result.findings]
    if result.adaptations:
        lines.append("adapted for this run:")
        lines += [f"  - {note}" for note in result.adaptations]
    lines.append(f"{'stage':<10} {'status':<7} {'time':>7}  detail")
    for stage in result.stages:
        time = f"{stage.seconds:6.1f}s" if stage.status != "skipped" else "      -"
        lines.append(f"{stage.name:<10} {stage.status:<7} {time}  {stage.detail}")
    for item in result.launch:
        where = "the job" if item["node"] is None else f"node {item['node']}"
        lines.append(f"  {where}: exit {item['exit_status']}{' (stopped)' if item.get('stopped') else ''}: "
                     f"{item['command']}")
    for rank in result.ranks:
        lines.append(f"  rank {rank['rank']} of {rank['world_size']} ({rank['backend']}): "
                     + (f"{rank['iterations']} iterations, weights {rank['trainable_sha256'][:12]}"
                        if rank.get("finished") else "did not finish"))
    failed = next((stage for stage in result.stages if stage.status == "failed"), None)
    if failed:
        lines.append(f"\nstage {failed.name!r} failed; the end of its log:")
        lines += ["  " + line for line in failed.log_tail.splitlines()]
    if result.reply is not None:
        lines.append("the chat reply comes from the tiny model's random weights: gibberish is expected; the stage "
                     "shows that the trained, converted and merged model loads and answers through the template")
    if result.kept:
        lines.append(f"kept: {result.kept}")
    passed = sum(stage.status == "passed" for stage in result.stages)
    lines.append(f"{'ok' if result.ok else 'FAILED'}: {passed}/{len(result.stages)} stages passed")
    return "\n".join(lines)


def run(args) -> int:
    from xtuner_recipes.smoke import run_smoke

    result = run_smoke(args.config, steps=args.steps, device=args.device, keep=args.keep,
                       progress=None if args.json else _progress, deepspeed=args.deepspeed,
                       nodes=args.nodes, gpus=args.gpus, launcher=args.launcher)
    if args.json:
        print_json(result.to_json())
    else:
        print(render_text(result))
    return EXIT_OK if result.ok else EXIT_FINDINGS
