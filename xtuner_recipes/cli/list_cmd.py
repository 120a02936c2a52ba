"""``xtuner-recipes list``: the recipes, their data formats and default templates."""

from dataclasses import asdict

from xtuner_recipes.cli.common import EXIT_OK, add_command, print_json
from xtuner_recipes.recipes import RECIPES

EXAMPLES = """  xtuner-recipes list
  xtuner-recipes list --json"""


def add_parser(commands) -> None:
    parser = add_command(commands, "list", "List the recipes, their data formats and default templates.", EXAMPLES, run)
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def run(args) -> int:
    if args.json:
        print_json([asdict(recipe) for recipe in RECIPES])
        return EXIT_OK
    for recipe in RECIPES:
        print(f"{recipe.name:<9} {recipe.summary}")
        print(f"{'':<9} data:     {recipe.data_format}")
        print(f"{'':<9} template: {recipe.prompt_template} (or the one matching the model's config.json)")
        print(f"{'':<9} default:  --data {recipe.default_data}")
    return EXIT_OK
