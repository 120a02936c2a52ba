"""Where each of mmengine's common LR schedulers begins and ends, without importing ``mmengine.optim``.

Importing ``mmengine.optim`` and building a torch optimizer costs 2 s on a 2-core machine — more
than the rest of a full ``validate`` after torch. The check only needs each scheduler's
``begin``, ``end`` and ``by_epoch`` as mmengine's Runner builds them, and for the three
schedulers xtuner's configs use (``LinearLR``, ``CosineAnnealingLR``, ``ConstantLR``) that is a
few lines of arithmetic. :func:`spans` answers only where it is sure mmengine accepts the
schedule; anything else (another type, a string type, an argument it doesn't know, a value
mmengine may refuse) returns None and the caller builds the schedulers with mmengine itself.
``tests/test_lr_spans.py`` checks the answers against mmengine's on generated schedules.

    >>> from mmengine.config.lazy import LazyObject
    >>> linear, cosine = (LazyObject("mmengine.optim", name) for name in ("LinearLR", "CosineAnnealingLR"))
    >>> warmup = dict(type=linear, start_factor=1e-5, by_epoch=True, begin=0, end=0.09, convert_to_iter_based=True)
    >>> decay = dict(type=cosine, eta_min=0.0, by_epoch=True, begin=0.09, end=3, convert_to_iter_based=True)
    >>> spans([warmup, decay], iters_per_epoch=100, max_epochs=3, epoch_loop=False)
    [Span(begin=0, end=9, by_epoch=False), Span(begin=9, end=300, by_epoch=False)]
"""

import sys
from typing import NamedTuple

from xtuner_recipes.values import is_number

INF = int(1e9)  # mmengine's "no end" (mmengine.optim.scheduler.param_scheduler.INF)

MODULES = ("mmengine.optim", "mmengine.optim.scheduler", "mmengine.optim.scheduler.lr_scheduler")
COMMON = {"type", "begin", "end", "by_epoch", "convert_to_iter_based"}
# The arguments each scheduler takes besides COMMON, and whether their values are in mmengine's range.
ARGUMENTS = {
    "LinearLR": {"start_factor", "end_factor"},
    "CosineAnnealingLR": {"T_max", "eta_min", "eta_min_ratio"},
    "ConstantLR": {"factor"},
}


class Span(NamedTuple):
    begin: int | float
    end: int | float
    by_epoch: bool


def _type_name(value) -> str | None:
    """The scheduler's name when ``value`` is surely mmengine's own class (lazy or already imported)."""
    from mmengine.config.lazy import LazyObject

    from xtuner_recipes.compat.mmengine import lazy_import

    if isinstance(value, LazyObject):
        modules, name = lazy_import(value)
        return name if len(modules) == 1 and modules[0] in MODULES and name in ARGUMENTS else None
    if isinstance(value, type) and value.__name__ in ARGUMENTS:
        module = sys.modules.get("mmengine.optim")
        return value.__name__ if module is not None and getattr(module, value.__name__, None) is value else None
    return None


def _one(scheduler, *, iters_per_epoch: int, max_epochs: int, max_iters: int) -> Span | None:
    if not isinstance(scheduler, dict):
        return None
    items = dict(dict.items(scheduler))  # a ConfigDict's plain items: nothing lazy is built
    name = _type_name(items.get("type"))
    if name is None or not set(items) <= COMMON | ARGUMENTS[name]:
        return None
    by_epoch = items.get("by_epoch", True)
    convert = items.get("convert_to_iter_based", False)
    if not isinstance(by_epoch, bool) or not isinstance(convert, bool):
        return None
    begin = items.get("begin", 0)
    end = items.get("end", max_epochs if by_epoch else max_iters)  # the Runner's default end
    if not (is_number(begin) and is_number(end)):
        return None
    if name == "LinearLR":
        factors = (items.get("start_factor", 1.0 / 3), items.get("end_factor", 1.0))
    elif name == "ConstantLR":
        factors = (items.get("factor", 1.0 / 3),)
    else:
        eta_min, ratio, t_max = items.get("eta_min"), items.get("eta_min_ratio"), items.get("T_max")
        if eta_min is not None and ratio is not None:
            return None  # mmengine asserts one or the other
        factors = ()
        if not all(v is None or is_number(v) for v in (eta_min, ratio, t_max)):
            return None
    if not all(is_number(f) and 0 <= f <= 1 for f in factors):
        return None
    if convert:
        if not by_epoch or iters_per_epoch <= 0:
            return None  # mmengine asserts both
        begin = int(begin * iters_per_epoch)
        end = int(end * iters_per_epoch) if end != INF else end
        by_epoch = False
    if end <= begin:
        return None  # mmengine raises "end should be larger than begin"
    return Span(begin, end, by_epoch)


def spans(schedulers, *, iters_per_epoch: int, max_epochs, epoch_loop: bool) -> list[Span] | None:
    """Each scheduler's (begin, end, by_epoch) as mmengine's Runner builds ``schedulers`` (raw, unbuilt
    config values) for ``iters_per_epoch`` x ``max_epochs``; None when only mmengine can tell."""
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    if not isinstance(schedulers, list | tuple) or not schedulers or not is_number(max_epochs):
        return None
    epochs = int(max_epochs) if epoch_loop else 1  # xtuner's iteration loop reports one epoch
    max_iters = int(iters_per_epoch * max_epochs)
    found = [_one(s, iters_per_epoch=iters_per_epoch, max_epochs=epochs, max_iters=max_iters) for s in schedulers]
    return None if any(span is None for span in found) else found
