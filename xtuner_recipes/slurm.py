"""The ``sbatch`` script ``plan --launcher slurm`` writes: one job that trains on every node of its allocation
and then converts and merges on the first.

What mmengine's Slurm init (``--launcher slurm``, the function xtuner calls) needs, and the traps around it:

- one task a GPU: ``SLURM_PROCID`` is the rank, ``SLURM_NTASKS`` the world size, ``SLURM_LOCALID`` the GPU, and
  ``scontrol show hostname $SLURM_NODELIST``'s first name the rendezvous address;
- ``MASTER_PORT``, else 29500: two jobs on one node would meet on the same port, so the script derives one from
  the job id;
- xtuner's own ``xtuner train`` entry point exits 0 when training fails; the script runs xtuner's train script
  itself (``python -m xtuner.tools.train``), whose exit status is training's, and ``srun --kill-on-bad-exit``
  stops every task when one fails.

    >>> script = sbatch_script("c.py", config_hash="ab", gpus=2, nodes=1, train_args="--deepspeed deepspeed_zero2",
    ...                        after=["echo done"])
    >>> [line for line in script.splitlines() if line.startswith("#SBATCH --n")]
    ['#SBATCH --nodes=1', '#SBATCH --ntasks-per-node=2']
"""

import hashlib
import shlex
from pathlib import Path

CPUS_PER_TASK = 8  # xtuner's dataloaders (4 workers by default) and the tokenizer's threads, a task
PORT_BASE, PORT_SPAN = 20000, 40000  # MASTER_PORT = PORT_BASE + job id % PORT_SPAN: below 60000, above system ports


def config_hash(path: str | Path) -> str:
    """The config's SHA-256: a plan says which config it was made for."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_command(config: str, train_args: str) -> str:
    """What each task runs: xtuner's train script with mmengine's Slurm launcher."""
    return f"python -m xtuner.tools.train {shlex.quote(config)} --launcher slurm{' ' + train_args if train_args else ''}"


CONVERTERS = {"xtuner convert pth_to_hf ": "python -m xtuner.tools.model_converters.pth_to_hf ",
              "xtuner convert merge ": "python -m xtuner.tools.model_converters.merge "}


def module_form(command: str) -> str:
    """``xtuner convert …`` as the converter script itself, whose exit status is the conversion's (``xtuner``'s
    entry point exits 0 when it fails, and the job's ``set -e`` would go on to merge a missing adapter).

        >>> module_form("xtuner convert merge m a out --max-shard-size 2GB")
        'python -m xtuner.tools.model_converters.merge m a out --max-shard-size 2GB'
    """
    for prefix, module in CONVERTERS.items():
        if command.startswith(prefix):
            return module + command[len(prefix):]
    return command


def port_line() -> str:
    return f"export MASTER_PORT=$(( {PORT_BASE} + SLURM_JOB_ID % {PORT_SPAN} ))"


def sbatch_script(config: str, *, config_hash: str, gpus: int, nodes: int, train_args: str, after: list[str],
                  environment: tuple[str, ...] = (), job_name: str | None = None) -> str:
    """The whole script, the same bytes for the same inputs (no dates, no paths of this machine)."""
    name = job_name or Path(config).stem
    lines = [
        "#!/bin/bash",
        f"# xtuner-recipes plan --launcher slurm for {config}",
        f"# config sha256: {config_hash}",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --nodes={nodes}",
        f"#SBATCH --ntasks-per-node={gpus}",
        f"#SBATCH --gpus-per-node={gpus}",
        f"#SBATCH --cpus-per-task={CPUS_PER_TASK}",
        "#SBATCH --output=%x-%j.out",
        "set -euo pipefail",
        "# a rendezvous port of this job's own: mmengine's Slurm init reads MASTER_PORT, else 29500 for every job",
        port_line(),
        *[f"export {setting}" for setting in environment],
        "# one task a GPU on every node; any task's failure stops them all and fails the job",
        f"srun --kill-on-bad-exit=1 {train_command(config, train_args)}",
        "# then, on the first node: the adapter, and the model merged with it",
        *after,
    ]
    return "\n".join(lines) + "\n"
