"""Dataset mappers for the recipes, registered in xtuner's ``MAP_FUNC`` on import.

Configs import them as objects (mmengine's lazy-import mode never runs an
import kept only for its side effect)::

    from xtuner_recipes.map_fns import medqa_map_fn

Registration also lets ``dataset_map_fn="medqa_map_fn"`` work once this module is imported.
It happens as soon as both this module and ``xtuner.registry`` are imported, in either
order, without importing xtuner here: xtuner brings torch (~2 s, ~600 MB), which
``prepare`` and the static checks must not pay.
"""

import importlib.abc
import importlib.util
import sys

from xtuner_recipes.map_fns.errors import GuanacoFormatError, MapFnError, MedQAFormatError, MSAgentFormatError
from xtuner_recipes.map_fns.guanaco import guanaco_map_fn
from xtuner_recipes.map_fns.medqa import medqa_map_fn
from xtuner_recipes.map_fns.msagent import msagent_map_fn

MAPPERS = {"medqa_map_fn": medqa_map_fn, "msagent_map_fn": msagent_map_fn, "guanaco_map_fn": guanaco_map_fn}

__all__ = ["MAPPERS", "GuanacoFormatError", "MSAgentFormatError", "MapFnError", "MedQAFormatError", "guanaco_map_fn",
           "medqa_map_fn", "msagent_map_fn"]


def register() -> None:
    """Put every mapper in xtuner's ``MAP_FUNC`` under its own name (once)."""
    from xtuner.registry import MAP_FUNC  # xtuner is a dependency; imported here to keep mappers light

    for name, function in MAPPERS.items():
        if MAP_FUNC.get(name) is None:
            MAP_FUNC.register_module(name=name, module=function)


class _RegisterAfterXtuner(importlib.abc.MetaPathFinder):
    """Runs ``register()`` right after ``xtuner.registry`` is first imported."""

    def find_spec(self, name, path, target=None):
        if name != "xtuner.registry":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register()

        spec.loader.exec_module = exec_then_register
        return spec


if "xtuner.registry" in sys.modules:
    register()
elif not any(isinstance(finder, _RegisterAfterXtuner) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterXtuner())
