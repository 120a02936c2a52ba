"""Schedule arithmetic: iterations, warmup, checkpoints — what mmengine will compute at train time.

    >>> plan(100, batch_size=1, gpus=1, max_epochs=3, warmup_ratio=0.03, save_steps=500,
    ...      save_total_limit=2, evaluation_freq=500)[0]["warmup_iters"]
    9
"""

import math

from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check
from xtuner_recipes.validate.inputs import Schedule
from xtuner_recipes.values import is_positive_int, is_positive_number


@check("schedule", level="full", codes=("C001", "C002", "C003", "C004", "C005"),
       reads=("settings", "launch", "samples"), provides=("schedule",))
def schedule_check(settings, launch, samples) -> Result:
    """The schedule of the loaded config over the samples the data check counted."""
    batch_size, max_epochs, hook = settings.batch_size, settings.max_epochs, settings.checkpoint_hook
    if settings.train_dataloader is None:  # a HuggingFace-Trainer config: its schedule is training_args'
        return Result([Finding("C004", "info", "iterations not computed: the config trains with HuggingFace's "
                               "Trainer (framework='huggingface')")], provides={"schedule": Schedule()})
    findings = []
    # Values S003 reports from the source; here the loaded value, which may come through a variable.
    if not is_positive_int(batch_size):
        findings.append(Finding("C005", "error", f"train_dataloader.batch_size is {batch_size!r}: torch's sampler "
                                "takes a positive integer only", key="train_dataloader.batch_size"))
    if max_epochs is not None and not is_positive_number(max_epochs):
        findings.append(Finding("C005", "error", f"train_cfg.max_epochs is {max_epochs!r}: the run has no "
                                "iterations", key="train_cfg.max_epochs"))
    if findings or samples.count is None or max_epochs is None:
        if samples.count is None and not findings:
            findings.append(Finding("C004", "info", "iterations and checkpoint names not computed: the number of "
                                    "training samples is unknown here (data not read, or packing without a tokenizer)"))
        return Result(findings, provides={"schedule": Schedule()})
    hook_by_epoch = dict.get(hook, "by_epoch", True) if isinstance(hook, dict) else True
    arguments = dict(
        batch_size=batch_size, gpus=launch.gpu_count(), max_epochs=max_epochs, warmup_ratio=settings.warmup_ratio,
        save_steps=dict.get(hook, "interval") if isinstance(hook, dict) else None,
        save_total_limit=dict.get(hook, "max_keep_ckpts") if isinstance(hook, dict) else None,
        evaluation_freq=settings.evaluation_freq, accumulative_counts=settings.accumulative_counts,
        by_epoch=settings.epoch_loop and hook_by_epoch is not False,
    )
    low, high = samples.range or (samples.count, samples.count)
    stats, found = plan(low, **arguments)
    if high != low:  # packing after a shuffle: the count varies from run to run within [low, high]
        most, found_most = plan(high, **arguments)
        for name in ("iters_per_epoch", "total_iters", "warmup_iters"):
            if most.get(name) != stats.get(name):
                stats[f"{name}_range"] = [stats.get(name), most.get(name)]
        if most.get("checkpoints") != stats.get("checkpoints"):
            stats["checkpoints_vary"] = True
        # An error must hold for every count the shuffle can give.
        sure = {f.code for f in found_most if f.severity == "error"}
        found = [f if f.severity != "error" or f.code in sure else
                 Finding(f.code, "warning", f.message + f" (with {low} packed samples; {high} at most)", f.key,
                         f.line, f.hint) for f in found]
    schedule = Schedule(stats.get("iters_per_epoch"), stats.get("total_iters"),
                        warmup_reported=any(f.code == "C001" for f in found), estimated=samples.estimated,
                        total_range=tuple(stats["total_iters_range"]) if "total_iters_range" in stats else None)
    if samples.estimated:
        stats["schedule_estimated"] = True
        # A sample can't prove a schedule fails: the full data may give more iterations.
        found = [f if f.severity != "error" else Finding(f.code, "warning", f.message + " (estimated from --sample)",
                                                         f.key, f.line, f.hint) for f in found]
    return Result(findings + found, stats, {"schedule": schedule})


def plan(samples: int, *, batch_size, gpus, max_epochs, warmup_ratio, save_steps, save_total_limit,
         evaluation_freq, accumulative_counts=1, by_epoch: bool = False) -> tuple[dict, list[Finding]]:
    """Stats and findings for ``samples`` training samples per epoch. ``by_epoch``: the loop runs
    by epochs and the checkpoint hook saves ``epoch_N.pth`` every ``save_steps`` epochs."""
    if not all(is_positive_number(v) for v in (batch_size, gpus, max_epochs)) or samples <= 0:
        return {}, []
    per_epoch = math.ceil(samples / (batch_size * gpus))  # DefaultSampler pads, the loader keeps the last batch
    total = int(per_epoch * max_epochs)
    # LinearLR(by_epoch=True, convert_to_iter_based=True): end = int(warmup_ratio * max_epochs * per_epoch)
    warmup = int(warmup_ratio * max_epochs * per_epoch) if is_positive_number(warmup_ratio) else 0
    stats = {"gpus": gpus, "iters_per_epoch": per_epoch, "total_iters": total, "warmup_iters": warmup}
    if isinstance(accumulative_counts, int):
        stats["global_batch"] = batch_size * accumulative_counts * gpus
    findings = []
    if is_positive_number(warmup_ratio) and warmup < 1:
        findings.append(Finding("C001", "error", f"warmup_ratio {warmup_ratio} x {max_epochs} epochs x {per_epoch} "
                                "iterations per epoch is less than one iteration: mmengine raises 'end should be "
                                "larger than begin' after the model has loaded", key="warmup_ratio",
                                hint=f"use warmup_ratio >= {1 / (max_epochs * per_epoch):.3g}, or more data"))
    if isinstance(save_steps, int) and save_steps > 0:
        unit, last = ("epoch", int(max_epochs)) if by_epoch else ("iter", total)
        saved = list(range(save_steps, last + 1, save_steps))
        if not saved or saved[-1] != last:
            saved.append(last)  # CheckpointHook saves the last one too
        if isinstance(save_total_limit, int) and save_total_limit > 0:
            saved = saved[-save_total_limit:]
        stats["checkpoints"] = [f"{unit}_{n}.pth" for n in saved]
        if save_steps > last:
            findings.append(Finding("C002", "info", f"save_steps {save_steps} > {last} {unit}s: only the final "
                                    f"checkpoint {unit}_{last}.pth is written", key="save_steps"))
    if isinstance(evaluation_freq, int) and evaluation_freq > total:
        findings.append(Finding("C003", "info", f"evaluation_freq {evaluation_freq} > {total} iterations: no chat "
                                "sample is logged during training", key="evaluation_freq"))
    return stats, findings
