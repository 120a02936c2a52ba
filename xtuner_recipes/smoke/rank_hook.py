"""The hook a multi-node smoke adds to the config: each rank says it joined, and what it trained.

``before_train`` writes ``rank<R>.json`` (rank, world size, backend, pid); ``after_train`` adds the iterations run
and a digest of the rank's trainable weights. Data-parallel ranks that trained together end with the same
weights (every update is the all-reduced gradient): equal digests show that the ranks formed one group, not
that each trained alone.
"""

import hashlib
import json
import os
import time
from pathlib import Path

from mmengine.hooks import Hook


def trainable_digest(model) -> str:
    """SHA-256 over the names and bytes of ``model``'s trainable parameters (a wrapper's module's)."""
    model = getattr(model, "module", model)
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters(), key=lambda item: item[0]):
        if parameter.requires_grad:
            digest.update(name.encode())
            digest.update(parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


class RankRecord(Hook):
    priority = "VERY_HIGH"  # before EvaluateChatHook's generations: a rank says it is training as soon as it is

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def _path(self) -> Path:
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        return self.folder / f"rank{rank}.json"

    def _write(self, record: dict) -> None:
        path = self._path()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        temporary.replace(path)

    def before_train(self, runner) -> None:
        import torch.distributed as dist

        joined = dist.is_available() and dist.is_initialized()
        self.record = {"rank": dist.get_rank() if joined else 0, "world_size": dist.get_world_size() if joined else 1,
                       "backend": dist.get_backend() if joined else None, "pid": os.getpid(),
                       "node": int(os.environ.get("NODE_RANK") or os.environ.get("SLURM_NODEID") or 0),
                       "master": f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}",
                       "slurm_job": os.environ.get("SLURM_JOB_ID"), "joined_at": time.time(), "finished": False}
        self._write(self.record)

    def after_train(self, runner) -> None:
        self.record.update(finished=True, finished_at=time.time(), iterations=runner.iter,
                           trainable_sha256=trainable_digest(runner.model))
        self._write(self.record)
