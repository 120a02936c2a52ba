"""What a stage's output says: the error a log ends with, the losses training logged, the checkpoint it wrote."""

import json
import math
from pathlib import Path


def error_line(log: str) -> str:
    """The line a Python traceback ends with, else the last non-empty line."""
    lines = [line for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0].strip()
        if head.endswith(("Error", "Exception", "Interrupt")) and " " not in head:
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def losses(work_dir: Path) -> list[float]:
    """Every loss mmengine logged under ``work_dir``, in order."""
    found = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "loss" in row:
                found.append(float(row["loss"]))
    return found


def after_train(plan: dict, result, stage) -> None:
    """Judge the train stage of ``result`` (a SmokeResult) from its work dir; fills in losses and the checkpoint."""
    work_dir = Path(plan["work_dir"])
    result.losses = losses(work_dir)
    pointer = work_dir / "last_checkpoint"
    if pointer.is_file():
        result.checkpoint = pointer.read_text(encoding="utf-8").strip()
        plan["checkpoint"] = result.checkpoint
    if not result.losses:
        stage.status, stage.detail = "failed", "training logged no loss"
    elif not all(math.isfinite(loss) for loss in result.losses):
        stage.status, stage.detail = "failed", f"loss not finite: {result.losses}"
    elif not result.checkpoint or not Path(result.checkpoint).exists():
        stage.status, stage.detail = "failed", "training wrote no checkpoint"
    else:
        stage.detail = f"{iterations(plan, result)}, {Path(result.checkpoint).name}"


def iterations(plan: dict, result) -> str:
    """What training did, in words: iterations that ran (of those asked), the loss, and the optimizer steps taken
    when the config accumulates gradients (mmengine updates every ``accumulative_counts`` iterations and at the
    last one: 4 iterations of a config that accumulates 16 make one update, so the loss logged cannot move)."""
    ran, asked = len(result.losses), plan.get("steps")
    words = f"{ran} iterations" if asked in (None, ran) else f"{ran} of the {asked} iterations asked ran"
    words += f", loss {result.losses[0]:.3f} → {result.losses[-1]:.3f}"
    accumulate = plan.get("accumulative_counts") or 1
    if accumulate > 1:
        updates = -(-ran // accumulate)
        words += (f" ({updates} optimizer step{'' if updates == 1 else 's'}: accumulative_counts={accumulate} sums "
                  f"the gradients of {accumulate} iterations"
                  + (", so every loss here is the untrained model's)" if updates == 1 else ")"))
    return words
