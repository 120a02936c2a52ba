"""Schedule arithmetic: iterations, warmup, checkpoints — what mmengine will compute at train time.

    >>> plan(100, batch_size=1, gpus=1, max_epochs=3, warmup_ratio=0.03, save_steps=500,
    ...      save_total_limit=2, evaluation_freq=500)[0]["warmup_iters"]
    9
"""

import math

from xtuner_recipes.validate.findings import Finding


def plan(samples: int, *, batch_size, gpus, max_epochs, warmup_ratio, save_steps, save_total_limit,
         evaluation_freq, accumulative_counts=1) -> tuple[dict, list[Finding]]:
    """Stats and findings for ``samples`` training samples per epoch."""
    if not all(isinstance(v, int | float) for v in (batch_size, max_epochs, warmup_ratio)) or samples <= 0:
        return {}, []
    per_epoch = math.ceil(samples / (batch_size * gpus))  # DefaultSampler pads, the loader keeps the last batch
    total = per_epoch * max_epochs
    # LinearLR(by_epoch=True, convert_to_iter_based=True): end = int(warmup_ratio * max_epochs * per_epoch)
    warmup = int(warmup_ratio * max_epochs * per_epoch)
    stats = {"gpus": gpus, "iters_per_epoch": per_epoch, "total_iters": total, "warmup_iters": warmup}
    if isinstance(accumulative_counts, int):
        stats["global_batch"] = batch_size * accumulative_counts * gpus
    findings = []
    if warmup_ratio > 0 and warmup < 1:
        findings.append(Finding("C001", "error", f"warmup_ratio {warmup_ratio} x {max_epochs} epochs x {per_epoch} "
                                "iterations per epoch is less than one iteration: mmengine raises 'end should be "
                                "larger than begin' after the model has loaded", key="warmup_ratio",
                                hint=f"use warmup_ratio >= {1 / (max_epochs * per_epoch):.3g}, or more data"))
    if isinstance(save_steps, int) and save_steps > 0:
        saved = list(range(save_steps, total + 1, save_steps))
        if not saved or saved[-1] != total:
            saved.append(total)  # CheckpointHook saves the last iteration too
        if isinstance(save_total_limit, int) and save_total_limit > 0:
            saved = saved[-save_total_limit:]
        stats["checkpoints"] = [f"iter_{n}.pth" for n in saved]
        if save_steps > total:
            findings.append(Finding("C002", "info", f"save_steps {save_steps} > {total} iterations: only the final "
                                    f"checkpoint iter_{total}.pth is written", key="save_steps"))
    if isinstance(evaluation_freq, int) and evaluation_freq > total:
        findings.append(Finding("C003", "info", f"evaluation_freq {evaluation_freq} > {total} iterations: no chat "
                                "sample is logged during training", key="evaluation_freq"))
    return stats, findings
