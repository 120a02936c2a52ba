"""Python imports this at the start of every process of a multi-node smoke: ``smoke --nodes`` puts this folder
first on ``PYTHONPATH`` and names its plan in ``XTUNER_RECIPES_SMOKE_PLAN``, then runs the launch commands ``plan``
prints, unchanged. The processes those commands start (``xtuner``, ``torchrun``, one training script a rank, the
converters) each install the smoke's adaptations here (``xtuner_recipes.smoke.nodes.install``), so what runs is
xtuner's own launch chain on the user's own config file.

A ``sitecustomize`` this one shadows (one later on ``sys.path``) still runs, after it.
"""

import os
import sys


def _shadowed() -> None:
    """Run the ``sitecustomize`` module that this one hides, if there is one."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


if __name__ == "sitecustomize":  # not when a test collector imports the file as a module of the package
    if os.environ.get("XTUNER_RECIPES_SMOKE_PLAN"):
        from xtuner_recipes.smoke.nodes import install

        install(os.environ["XTUNER_RECIPES_SMOKE_PLAN"])
    _shadowed()
