"""The recipe registry: data, not logic. A fourth recipe is one more entry and one template.

    >>> get_recipe("medqa").template
    'medqa.py'
"""

import difflib
from dataclasses import dataclass

from xtuner_recipes.errors import RecipeError


@dataclass(frozen=True)
class Recipe:
    """What ``gen NAME`` starts from."""

    name: str
    template: str  # file in templates/
    mapper: str  # the dataset_map_fn the template imports
    default_data: str  # data_path when --data is not given
    prompt_template: str  # used when the model's config.json doesn't decide it
    data_format: str  # what the data file holds, for `list`
    summary: str


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="oasst1",
        template="oasst1.py",
        mapper="xtuner_recipes.map_fns.guanaco_map_fn",
        default_data="./openassistant-guanaco/openassistant_best_replies_train.jsonl",
        prompt_template="internlm_chat",
        data_format='JSONL, {"text": "### Human: ...### Assistant: ..."} (openassistant-guanaco)',
        summary="alignment on OpenAssistant's best replies",
    ),
    Recipe(
        name="medqa",
        template="medqa.py",
        mapper="xtuner_recipes.map_fns.medqa_map_fn",
        default_data="./medqa/train.jsonl",
        prompt_template="internlm_chat",
        data_format="JSON/JSONL, MedQA {question, options, answer, answer_idx} or {conversation: [...]}",
        summary="medical exam question answering (US, Mainland, Taiwan)",
    ),
    Recipe(
        name="msagent",
        template="msagent.py",
        mapper="xtuner_recipes.map_fns.msagent_map_fn",
        default_data="./MSAgent-Bench/train.jsonl",
        prompt_template="internlm_chat",
        data_format="JSONL, MSAgent-Bench {id, conversations} with tool-call markup",
        summary="tool use in ReAct format (chat with --lagent)",
    ),
)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises with the closest known ones."""
    for recipe in RECIPES:
        if recipe.name == name:
            return recipe
    names = [recipe.name for recipe in RECIPES]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}?" if close else f"known recipes: {', '.join(names)}"
    raise RecipeError(f"unknown recipe {name!r}", hint=hint)
