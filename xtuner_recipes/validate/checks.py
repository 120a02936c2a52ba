"""Checks are registered objects that declare their level, the codes they may emit, the facts they read and
the facts they provide; :func:`ordered` runs them in an order those declarations allow.

A check is a function of the facts it reads (by name, as keyword arguments) returning a :class:`Result`::

    @check("schedule", level="full", codes=("C001", "C004"), reads=("settings", "samples"), provides=("schedule",))
    def schedule(settings, samples) -> Result: ...

A fact a check provides as None (no ``config.json``, a config mmengine can't load) means there is nothing to
build on: the checks that read it are skipped without a word, the finding that explains it is already
there. A check that fails (a bug of this tool's) provides nothing: the checks that read what it would have
provided are skipped and the report says so.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from xtuner_recipes.findings import CODES, Finding

LEVELS = ("static", "load", "full")
# The modules whose checks a run uses, by family; registration order breaks ties between checks that are
# ready at the same time, so findings come out in this order.
MODULES = (
    "xtuner_recipes.validate.source",  # S: the source, no import of torch
    "xtuner_recipes.validate.load.config",  # L: mmengine loads it, its imports resolve
    "xtuner_recipes.validate.inputs",  # the settings and the run, parsed once
    "xtuner_recipes.validate.load.preflight",  # L: what xtuner train checks before the model loads
    "xtuner_recipes.validate.machine.model",  # M: the model directory
    "xtuner_recipes.validate.data.check",  # D, T: the data, tokens, packing
    "xtuner_recipes.validate.schedule.iterations",  # C: iterations, warmup, checkpoints
    "xtuner_recipes.validate.schedule.lr",  # C: the LR schedule
    "xtuner_recipes.validate.estimate.check",  # G: GPU and host memory, time
    "xtuner_recipes.validate.machine.environment",  # E: this machine
)


@dataclass(frozen=True)
class Result:
    findings: list[Finding] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    provides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[..., Result]
    level: str
    codes: tuple[str, ...]
    reads: tuple[str, ...]
    provides: tuple[str, ...]


REGISTRY: list[Check] = []


def check(name: str, *, level: str, codes: tuple[str, ...] = (), reads: tuple[str, ...] = (),
          provides: tuple[str, ...] = ()):
    """Register the decorated function as the check ``name``."""
    unknown = set(codes) - set(CODES)
    if unknown or level not in LEVELS:
        raise ValueError(f"check {name}: unknown codes {sorted(unknown)} or level {level!r}")

    def register(function: Callable[..., Result]) -> Callable[..., Result]:
        REGISTRY.append(Check(name, function, level, tuple(codes), tuple(reads), tuple(provides)))
        return function

    return register


def registered() -> list[Check]:
    """Every check, in ``MODULES`` order (and their order within a module), whatever imported them first."""
    for module in MODULES:
        importlib.import_module(module)
    return sorted(REGISTRY, key=lambda c: MODULES.index(c.run.__module__))


def ordered(checks: list[Check], given: set[str]) -> list[Check]:
    """``checks`` so that each comes after the checks providing what it reads (``given``: the runner's own
    facts); among those ready, registration order. A read nothing provides is a bug: ValueError."""
    providers = {name: c.name for c in checks for name in c.provides}
    missing = {(c.name, name) for c in checks for name in c.reads if name not in given and name not in providers}
    if missing:
        raise ValueError(f"no check provides {sorted(missing)}")
    done, out, waiting = set(given), [], list(checks)
    while waiting:
        ready = next((c for c in waiting if set(c.reads) <= done), None)
        if ready is None:
            raise ValueError(f"the checks {[c.name for c in waiting]} read each other's facts")
        waiting.remove(ready)
        out.append(ready)
        done |= set(ready.provides)
    return out


def up_to(level: str) -> list[Check]:
    """The checks of ``level`` and the levels below it."""
    allowed = LEVELS[:LEVELS.index(level) + 1]
    return [c for c in registered() if c.level in allowed]
