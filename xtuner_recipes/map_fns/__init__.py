"""Dataset mappers for the recipes, registered in xtuner's ``MAP_FUNC`` on import.

Configs import them as objects (mmengine's lazy-import mode never runs an
import kept only for its side effect)::

    from xtuner_recipes.map_fns import medqa_map_fn

Registration also lets ``dataset_map_fn="medqa_map_fn"`` work once this module is imported.
"""

from xtuner_recipes.map_fns.errors import MapFnError, MedQAFormatError, MSAgentFormatError
from xtuner_recipes.map_fns.medqa import medqa_map_fn
from xtuner_recipes.map_fns.msagent import msagent_map_fn

MAPPERS = {"medqa_map_fn": medqa_map_fn, "msagent_map_fn": msagent_map_fn}

__all__ = ["MAPPERS", "MSAgentFormatError", "MapFnError", "MedQAFormatError", "medqa_map_fn", "msagent_map_fn"]


def register() -> None:
    """Put every mapper in xtuner's ``MAP_FUNC`` under its own name (once)."""
    from xtuner.registry import MAP_FUNC  # xtuner is a dependency; imported here to keep mappers light

    for name, function in MAPPERS.items():
        if MAP_FUNC.get(name) is None:
            MAP_FUNC.register_module(name=name, module=function)


register()
