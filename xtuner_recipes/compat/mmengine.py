"""mmengine's private attributes, in one place (``tests/test_compat.py`` holds each to mmengine 0.10).

- ``Config._cfg_dict``: the loaded settings without building lazy imports (``Config.__getattr__`` builds them);
- ``LazyObject._module`` / ``._imported``: what a lazy import names, read without importing it;
- ``Config._format_python_code``: ``pretty_text`` without yapf's formatting pass;
- ``Runner._build_param_scheduler`` and the loops' ``_max_epochs`` / ``_max_iters``: the LR schedulers built
  exactly as the Runner builds them, without a Runner.
"""

import types


def settings(config) -> dict:
    """The loaded config's top-level dict; lazy values stay lazy when read with ``dict.get``."""
    return config._cfg_dict


def is_lazy(value) -> bool:
    """A lazily imported name (``LazyObject``) or an attribute of one (``LazyAttr``), without importing mmengine
    when nothing has (a config's values are only ever lazy once mmengine loaded it)."""
    return type(value).__name__ in ("LazyObject", "LazyAttr") and type(value).__module__.startswith("mmengine")


def lazy_import(value) -> tuple[list[str], str | None]:
    """``(modules, imported name)`` of a ``LazyObject``: ``(["torch"], None)`` for ``import torch``,
    ``(["xtuner.dataset.map_fns"], "oasst1_map_fn")`` for ``from xtuner.dataset.map_fns import oasst1_map_fn``."""
    module = value._module
    return (list(module) if isinstance(module, list | tuple) else [module]), value._imported


def raw(config, key: str, default=None):
    """The setting at a dotted ``key`` without building anything (lazy imports stay lazy)."""
    node = settings(config)
    for part in key.split("."):
        try:
            node = node[int(part)] if isinstance(node, list | tuple) else dict.__getitem__(node, part)
        except (KeyError, IndexError, ValueError, TypeError):
            return default
    return node


def unformatted_text(cfg) -> str:
    """``cfg.pretty_text`` as the Runner computes it, minus yapf's formatting (see ``load.preflight.printable``)."""
    object.__setattr__(cfg, "_format_python_code", False)  # Config.__setattr__ would store it as a setting
    return cfg.pretty_text


def build_param_scheduler(schedulers, optim_wrapper, *, iters_per_epoch: int, max_epochs, epoch_loop: bool):
    """mmengine's own ``Runner._build_param_scheduler`` for a loop of ``iters_per_epoch`` x ``max_epochs``: a
    scheduler without ``end`` ends at the loop's ``max_epochs`` (1 for an iteration loop)."""
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner

    loop = object.__new__(EpochBasedTrainLoop if epoch_loop else IterBasedTrainLoop)
    loop._max_epochs = int(max_epochs) if epoch_loop else 1  # IterBasedTrainLoop reports one epoch
    loop._max_iters = int(iters_per_epoch * max_epochs)
    runner = types.SimpleNamespace(_train_loop=loop, max_epochs=loop._max_epochs, max_iters=loop._max_iters,
                                   train_dataloader=range(iters_per_epoch),
                                   logger=types.SimpleNamespace(debug=lambda *_, **__: None))
    return Runner._build_param_scheduler(runner, schedulers, optim_wrapper)
