"""The learning-rate schedule the config really builds: ``param_scheduler`` through mmengine's own
Runner code, over the run's iterations.

mmengine builds each scheduler with ``Runner._build_param_scheduler``: a scheduler without ``end``
ends at the loop's ``max_epochs`` — 1 for xtuner's iteration-based ``TrainLoop`` — and
``convert_to_iter_based`` turns epochs into iterations. What it builds is what trains, so a cosine
given ``T_max`` but no ``end`` stops after the first epoch and the LR stays where it stopped.

    >>> coverage([(0, 10), (10, 120)], 120)
    []
    >>> coverage([(0, 3), (3, 40)], 120)
    [(40, 120)]
"""

import copy
import dataclasses

from xtuner_recipes.compat.mmengine import build_param_scheduler
from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check
from xtuner_recipes.validate.inputs import setting
from xtuner_recipes.validate.schedule import lr_spans


def coverage(spans: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """The iteration ranges in ``[0, total)`` that no ``[begin, end)`` span covers."""
    gaps, position = [], 0
    for begin, end in sorted(spans):
        if begin > position:
            gaps.append((position, min(begin, total)))
        position = max(position, end)
        if position >= total:
            break
    if position < total:
        gaps.append((position, total))
    return [(a, b) for a, b in gaps if a < b]


def build(schedulers, *, iters_per_epoch: int, max_epochs, epoch_loop: bool, lr: float = 1.0):
    """The schedulers as mmengine's Runner builds them for a loop of ``iters_per_epoch`` x ``max_epochs``,
    on an optimizer whose learning rate starts at ``lr``."""
    import torch
    from mmengine.optim import OptimWrapper

    return build_param_scheduler(copy.deepcopy(schedulers), OptimWrapper(_probe_optimizer(torch, lr)),
                                 iters_per_epoch=iters_per_epoch, max_epochs=max_epochs, epoch_loop=epoch_loop)


def _probe_optimizer(torch, lr: float = 1.0):
    """A torch Optimizer holding one parameter group, for schedulers to read and write.

    ``torch.optim.Optimizer.__init__`` imports torch._dynamo on its first call (0.8 s here); the
    schedulers only touch ``param_groups``, ``defaults``, ``state`` and ``step``."""

    class Probe(torch.optim.Optimizer):
        def __init__(self):  # noqa: D107 - deliberately not Optimizer.__init__ (see above)
            self.defaults = {"lr": lr, "momentum": 0.9}
            self.param_groups = [{"params": [], "lr": lr, "momentum": 0.9}]
            self.state = {}

        def step(self, closure=None):
            return None

    return Probe()


@check("lr schedule", level="full", codes=("C006", "C007"), reads=("config", "settings", "schedule"))
def lr_check(config, settings, schedule) -> Result:
    schedulers = settings.param_scheduler
    if not schedulers or schedule.iters_per_epoch is None or schedule.total_iters is None:
        return Result()
    epoch_loop = settings.epoch_loop
    shape = dict(iters_per_epoch=schedule.iters_per_epoch, max_epochs=settings.max_epochs, epoch_loop=epoch_loop)
    # the common schedulers' spans without importing mmengine.optim; the rest built by mmengine
    built = lr_spans.spans(schedulers, **shape)
    resolved = setting(config, "param_scheduler", build=True) if built is None else None
    if built is None and not resolved:
        return Result()  # its imports don't resolve: L002 said so
    try:
        built = built or build(resolved, **shape)
    except ImportError:
        return Result()  # a scheduler's type is a lazy import that fails: L002 reports it
    except Exception as error:  # noqa: BLE001 - mmengine refusing the schedule: the user's config
        if schedule.warmup_reported:
            return Result()  # C001 said it: the warmup rounds to zero iterations
        return Result([Finding("C006", "error", f"mmengine refuses param_scheduler for this run: "
                               f"{type(error).__name__}: {error}", key="param_scheduler")])
    spans, never = [], []
    for index, scheduler in enumerate(built):
        if scheduler.by_epoch and not epoch_loop:
            never.append(index)  # an iteration loop never ends an epoch for it
            continue
        scale = schedule.iters_per_epoch if scheduler.by_epoch else 1
        spans.append((scheduler.begin * scale, min(scheduler.end * scale, 1 << 62)))
    # Both train the wrong thing: the learning rate stays where it was (tests/test_failure_proofs.py runs it).
    findings = [Finding("C007", "error", f"param_scheduler.{i} counts epochs in an iteration-based loop without "
                        "convert_to_iter_based=True: it never steps", key=f"param_scheduler.{i}",
                        hint="add convert_to_iter_based=True") for i in never]
    total = schedule.total_iters
    for begin, end in coverage(spans, total):
        findings.append(Finding(
            "C007", "error", f"no scheduler covers iterations {begin}-{end} of {total}: the learning rate stays "
            "fixed there, where the scheduler before left it", key="param_scheduler",
            hint="give the last scheduler end=max_epochs (a CosineAnnealingLR with T_max and no end stops after "
                 "one epoch in xtuner's TrainLoop)"))
    if schedule.estimated:  # a gap in iterations extrapolated from --sample: a warning, not a proof
        findings = [dataclasses.replace(f, severity="warning", message=f.message + " (estimated from --sample)")
                    if f.key == "param_scheduler" else f for f in findings]
    return Result(findings)
