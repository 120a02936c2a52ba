"""``python -m xtuner_recipes`` runs the same CLI as the ``xtuner-recipes`` script."""

from xtuner_recipes.cli import run

run()
