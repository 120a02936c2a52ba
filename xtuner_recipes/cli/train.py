"""``xtuner-recipes train CONFIG [xtuner train args]``: validate, train, and return training's real exit status.

``xtuner train`` starts the training script in a child process and exits 0 whatever
it returned; this command runs the same script (through torchrun when
``NPROC_PER_NODE``/``NNODES`` ask for several processes, as xtuner does) and
says how it ended: 0 trained, 1 validate found errors (nothing ran), 2 usage or internal
error (or this machine cannot launch it: doctor's verdict, --skip-doctor to launch anyway), 3 training
failed, 128+N training killed by signal N.
"""

import argparse
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path

from xtuner_recipes.cli.common import EXIT_FINDINGS, EXIT_USAGE, add_command, positive_number
from xtuner_recipes.errors import RecipeError

# Exit status: 0 trained, 1 validate found errors (nothing ran), 2 usage or internal error, or this machine
# cannot launch it (doctor's verdict; --skip-doctor),
# 3 training ran and failed (its own status is printed), 128+N training killed by signal N.
EXIT_TRAINING_FAILED = 3

EXAMPLES = """  xtuner-recipes train internlm_chat_7b_qlora_medqa_e3.py
  NPROC_PER_NODE=8 xtuner-recipes train my_config.py --deepspeed deepspeed_zero2
  xtuner-recipes train --validate-level load my_config.py --work-dir ./runs/a
  NPROC_PER_NODE=8 xtuner-recipes train --gpu-mem 80 my_config.py --deepspeed deepspeed_zero3
  xtuner-recipes train --skip-doctor my_config.py   # launch although doctor says this machine can't"""


def add_parser(commands) -> None:
    parser = add_command(
        commands, "train",
        "Validate a config, then run xtuner's training and exit with its real status. "
        "Arguments after CONFIG go to xtuner train.",
        EXAMPLES, run)
    parser.add_argument("config", metavar="CONFIG", type=Path)
    parser.add_argument("--validate-level", choices=("static", "load", "full"), default="full",
                        help="how far to check before training (default: %(default)s); errors stop it")
    parser.add_argument("--gpu-mem", type=positive_number, metavar="GIB",
                        help="compare the memory estimate with a card of GIB (default: this machine's GPU)")
    parser.add_argument("--skip-doctor", action="store_true",
                        help="launch even when doctor finds this machine unable to (no GPU, bitsandbytes or "
                             "deepspeed failing): for those who know better")
    parser.add_argument("xtuner_args", nargs=argparse.REMAINDER, metavar="ARG ...",
                        help="passed to xtuner train (e.g. --deepspeed deepspeed_zero2 --work-dir DIR)")


def training_command(config: str, xtuner_args: list[str], environ=None) -> list[str]:
    """The process xtuner's own ``xtuner train`` would start, without its exit-0 wrapper."""
    from xtuner_recipes.xtuner_info import source_dir

    script = str(source_dir() / "tools" / "train.py")
    # os.environ read at the call: datasets' map(num_proc=…) rebinds os.environ to a copy of itself
    environ = os.environ if environ is None else environ
    try:
        nnodes = int(environ.get("NNODES", 1))
        nproc = int(environ.get("NPROC_PER_NODE", 1))
    except ValueError:
        raise RecipeError(f"NNODES={environ.get('NNODES')!r} and NPROC_PER_NODE={environ.get('NPROC_PER_NODE')!r} "
                          "must be whole numbers") from None
    if nnodes == 1 and nproc == 1 or "slurm" in xtuner_args:
        return [sys.executable, script, config, *xtuner_args]
    port = environ.get("PORT") or str(random.randint(20000, 29999))
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}",
            f"--node_rank={environ.get('NODE_RANK', 0)}", f"--nproc_per_node={nproc}",
            f"--master_addr={environ.get('ADDR', '127.0.0.1')}", f"--master_port={port}",
            script, config, *xtuner_args, "--launcher", "pytorch"]


def deepspeed_value(xtuner_args: list[str]) -> str | None:
    """The value of ``--deepspeed`` among xtuner's arguments (the last one, as argparse takes it)."""
    value = None
    for index, word in enumerate(xtuner_args):
        if word == "--deepspeed" and index + 1 < len(xtuner_args):
            value = xtuner_args[index + 1]
        elif word.startswith("--deepspeed="):
            value = word.split("=", 1)[1]
    return value


def launch_of(xtuner_args: list[str], environ=None):
    """The ``Launch`` that ``xtuner train`` with these arguments starts: ``--deepspeed`` as xtuner reads it
    (none given: without DeepSpeed), NPROC_PER_NODE x NNODES GPUs.

        >>> launch = launch_of(["--work-dir", "w"], {"NPROC_PER_NODE": "8"})
        >>> launch.preset, launch.stage, launch.gpus
        (None, 0, 8)
    """
    from xtuner_recipes.validate.inputs import Launch

    environ = os.environ if environ is None else environ  # at the call (see training_command)
    try:
        nodes = max(int(environ.get("NNODES", 1)), 1)
        gpus = int(environ.get("NPROC_PER_NODE", 1)) * nodes
    except ValueError:
        nodes, gpus = 1, 1  # training_command says what is wrong with them
    return Launch.from_preset(deepspeed_value(xtuner_args), gpus=max(gpus, 1), nodes=nodes)


def run(args) -> int:
    from xtuner_recipes.validate.inputs import Launch, Options
    from xtuner_recipes.validate.reporters import render_text, use_colour
    from xtuner_recipes.validate.runner import validate_config

    launch: Launch = launch_of(args.xtuner_args)
    stage, gpus = launch.stage, launch.gpus
    report = validate_config(str(args.config), level=args.validate_level, launch=launch,
                             options=Options(gpu_mem=args.gpu_mem))
    # Warnings too, before any GPU time: E003 "deepspeed is not installed" predicts a failure.
    sys.stderr.write(render_text([report], colour=use_colour(sys.stderr)))
    if report.internal_error:
        print(f"not training: the validator failed on {args.config}: {report.internal_error}", file=sys.stderr)
        return EXIT_USAGE
    if not report.ok:
        print(f"not training: {args.config} has errors (exit {EXIT_FINDINGS})", file=sys.stderr)
        return EXIT_FINDINGS
    if report.machine is not None and not report.machine["ok"] and not args.skip_doctor:
        fixes = [p["fix"] for p in report.machine["problems"] if p.get("fix")]
        print(f"not training: this machine cannot launch {args.config} (exit {EXIT_USAGE}); the config itself has "
              "no errors." + ("".join(f"\n  fix: {fix}" for fix in dict.fromkeys(fixes)))
              + "\n  (`xtuner-recipes doctor` says more; --skip-doctor launches anyway)", file=sys.stderr)
        return EXIT_USAGE
    from xtuner_recipes.doctor import launch_environment

    trap = launch_environment(1)  # several nodes without PORT/ADDR/NODE_RANK: they would never meet
    if trap:
        print(f"not training: {trap[0].message} (exit {EXIT_USAGE})\n  fix: {trap[0].hint}", file=sys.stderr)
        return EXIT_USAGE
    command = training_command(str(args.config), args.xtuner_args)
    shape = f", memory at ZeRO-{stage} on {gpus} GPU{'s' if gpus > 1 else ''}" if args.validate_level == "full" else ""
    if int(os.environ.get("NNODES", 1) or 1) > 1:
        shape += f", node {os.environ['NODE_RANK']} of {os.environ['NNODES']} (ADDR {os.environ['ADDR']}, PORT " \
                 f"{os.environ['PORT']})"
    environ = dict(os.environ)
    if report.stats.get("expandable_segments", report.stats.get("packed") is False) \
            and "PYTORCH_CUDA_ALLOC_CONF" not in environ:
        # unpacked batches: the launch the estimate is for, and `plan` prints (G003)
        from xtuner_recipes.plan import EXPANDABLE

        name, value = EXPANDABLE.split("=", 1)
        environ[name] = value
        shape += f", {EXPANDABLE} (" + ("the data is not packed" if report.stats.get("packed") is False
                                         else "a mixture of experts") + ")"
    print(f"validated ({args.validate_level}){shape}; running: {shlex.join(command)}", file=sys.stderr, flush=True)
    status = subprocess.run(command, env=environ).returncode
    if status < 0:  # killed by a signal: the shell's convention
        print(f"training killed by signal {-status}", file=sys.stderr)
        return 128 - status
    if status != 0:
        print(f"training failed: exit status {status} (this command exits {EXIT_TRAINING_FAILED})", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    return 0
